"""The one loader of a trained run: ``config.py`` + ``checkpoint.pth`` -> the plain student, in eval mode.

The student is :func:`ld_core.student.student_only` of the run's config (never a teacher), built with mmdet's
registry; its weights come from the tensor-only checkpoint (:func:`.checkpoints.load_tensor_state_dict`,
``weights_only=True``), must fit it exactly (keys and shapes; BN step counters aside) and be finite. Every
problem is one line naming the file. ``evaluate``, ``fps``, ``noise``, ``figures`` and ``export`` load through it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from ..engine.nonfinite import nonfinite_tensors
from ..errors import ConfigError, DataError, first_line, require_dir, require_file
from ..student import student_only
from .checkpoints import fit_problem, load_tensor_state_dict


@dataclass(frozen=True)
class StudentConfig:
    """A run's config reduced to its plain student: ``cfg`` (a dict) and the config's ``ld_repro`` ``meta``."""

    path: Path
    cfg: dict
    meta: dict

    @property
    def classes(self) -> Optional[list]:
        """The class names of the test dataset's ``metainfo`` (``None`` if the config sets none)."""
        metainfo = ((self.cfg.get("test_dataloader") or {}).get("dataset") or {}).get("metainfo") or {}
        return list(metainfo["classes"]) if metainfo.get("classes") else None


@dataclass(frozen=True)
class TrainedStudent:
    """A loaded student: the model (eval mode; ``model.cfg`` set as ``mmdet.apis.init_detector`` sets it), its
    config and the checkpoint it came from."""

    model: torch.nn.Module
    config: StudentConfig
    checkpoint: Path

    @property
    def cfg(self) -> dict:
        return self.config.cfg

    @property
    def meta(self) -> dict:
        return self.config.meta


def run_files(run_dir: Union[str, os.PathLike]) -> tuple:
    """``(config.py, checkpoint.pth)`` of a run folder ``results/runs/<run>/seed<k>``; one-line errors."""
    run_dir = require_dir(run_dir, "run folder")
    return (require_file(run_dir / "config.py", "config file"),
            require_file(run_dir / "checkpoint.pth", "checkpoint file"))


def read_student_config(config: Union[str, os.PathLike]) -> StudentConfig:
    """The plain student of the config file ``config`` (its ``custom_imports`` imported by mmengine)."""
    from mmengine.config import Config

    config = require_file(config, "config file")
    try:
        raw = Config.fromfile(str(config))
    except Exception as exc:  # syntax errors etc. are multi-line
        raise ConfigError(f"{config}: cannot read config ({first_line(exc)})") from None
    if "model" not in raw or "bbox_head" not in (raw.model or {}):
        raise ConfigError(f"{config}: config has no model.bbox_head")
    return StudentConfig(path=config, cfg=student_only(raw.to_dict()), meta=dict(raw.get("ld_repro", {})))


def load_weights(model: torch.nn.Module, checkpoint: Union[str, os.PathLike], config=None) -> dict:
    """Load the tensor-only ``checkpoint`` into ``model``: keys and shapes must fit, every tensor be finite.
    Returns the checkpoint's state dict."""
    checkpoint = Path(checkpoint)
    state = load_tensor_state_dict(checkpoint)
    problem = fit_problem(model.state_dict(), state)
    if problem is not None:
        raise ConfigError(f"{checkpoint}: checkpoint does not fit the student of {config or 'the config'}: {problem}")
    bad = nonfinite_tensors(state)
    if bad:  # a diverged training: its detections would be scored "AP 0"
        raise DataError(f"{checkpoint}: {len(bad)} weight tensor(s) hold NaN/inf (e.g. {bad[0]}): the "
                        "training diverged; retrain it (a NaN model is not scored)")
    model.load_state_dict(state, strict=False)  # fit_problem checked the keys (BN step counters may be absent)
    return state


def build_student(config: StudentConfig, device: str = "cpu") -> torch.nn.Module:
    """The student of ``config`` with mmdet's registry (random weights; no init_weights, no pretrained file)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, ConfigDict

    register_all_modules(init_default_scope=True)
    with warnings.catch_warnings():  # mmdet's DeprecationWarnings (num_anchors, ...) are not the user's business
        warnings.simplefilter("ignore")
        model = MODELS.build(ConfigDict(config.cfg["model"]))  # ConfigDict: heads read test_cfg by attribute
    model.cfg = Config(config.cfg)  # as init_detector: mmdet.apis.inference_detector reads the test pipeline here
    if config.classes:
        model.dataset_meta = {"classes": config.classes}
    return model.to(device)


def load_student(config: Union[str, os.PathLike, StudentConfig], checkpoint: Union[str, os.PathLike],
                 device: str = "cpu") -> TrainedStudent:
    """The trained student of ``config`` (a file, or a :class:`StudentConfig` already read) with the weights of
    ``checkpoint``, in eval mode on ``device``."""
    if not isinstance(config, StudentConfig):
        config = read_student_config(config)
    checkpoint = require_file(checkpoint, "checkpoint file")
    model = build_student(config, "cpu")
    load_weights(model, checkpoint, config.path)
    return TrainedStudent(model=model.to(device).eval(), config=config, checkpoint=checkpoint)


def load_run(run_dir: Union[str, os.PathLike], device: str = "cpu") -> TrainedStudent:
    """:func:`load_student` of a run folder's ``config.py`` and ``checkpoint.pth``."""
    return load_student(*run_files(run_dir), device=device)
