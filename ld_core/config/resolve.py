"""The resolver: the mmdet config of one (run, seed) of the matrix under a scale profile and the pipeline's
options, as ``ld_core resolve`` writes it to ``config.py`` and the Snakefile's weight checks read it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from .builder import build_run_config, dataset_classes
from .matrix import Matrix


def run_dir(results: str | Path, run_id: str, seed: int) -> Path:
    """Folder of one run and seed: config.py, checkpoint.pth, train.log, metrics.json."""
    return Path(results) / "runs" / run_id / f"seed{seed}"


def config_text(cfg: dict) -> str:
    """Render a config dict as mmengine Python config text."""
    from mmengine.config import Config  # not at the Snakefile's parse: only where text is rendered

    return Config(cfg).pretty_text


def resolve_run_config(matrix: Matrix, run_id: str, seed: int, scale: dict, *, results: str | Path,
                       user_dataset=None, data_root: Optional[str] = None, pretrained_dir: Optional[str] = None,
                       voc_root: Optional[str] = None, rehearsal: Optional[dict] = None) -> dict:
    """The config dict of (run, seed): its teacher's files under ``results``, the classes of ``user_dataset`` (a
    :class:`~ld_core.data.user_dataset.UserDataset` in place of the run's matrix dataset, or None). A seed other
    than a run's fixed seed is a one-line ``ConfigError``."""
    run = matrix.run(run_id)
    if seed not in run.seeds([seed]):
        raise ConfigError(f"{matrix.path}: run '{run.id}' has the fixed seed {run.seed}, not {seed}")
    teacher_cfg = teacher_ckpt = None
    teacher = matrix.teacher_of(run.id)
    if teacher is not None:
        tdir = run_dir(results, *teacher).resolve()
        teacher_cfg, teacher_ckpt = str(tdir / "config.py"), str(tdir / "checkpoint.pth")
    return build_run_config(run, seed, scale, results_dir=results, classes=dataset_classes(scale, user_dataset),
                            data_root=data_root, pretrained_dir=pretrained_dir, voc_root=voc_root,
                            user_dataset=user_dataset, rehearsal=rehearsal, teacher_config=teacher_cfg,
                            teacher_ckpt=teacher_ckpt)
