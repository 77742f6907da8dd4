"""Shared fixtures (the helpers they use live in ``tests/helpers.py``)."""
from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from helpers import tiny_gfl_cfg  # noqa: E402  (after the torch check)


@pytest.fixture
def mmdet_scope():
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import ld_core.models  # noqa: F401  (registers LD components)


@pytest.fixture
def teacher_files(tmp_path, mmdet_scope):
    """A teacher config file (R-34 GFL) and a tensor-only checkpoint of random weights."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ld_core.models.checkpoints import save_tensor_checkpoint

    cfg = tiny_gfl_cfg(depth=34)
    path = tmp_path / "teacher_config.py"
    Config(dict(model=cfg)).dump(str(path))
    torch.manual_seed(1)
    model = MODELS.build(copy.deepcopy(cfg))
    ckpt = save_tensor_checkpoint(model, tmp_path / "teacher.pth", {"run": "teacher"})
    return path, ckpt, model
