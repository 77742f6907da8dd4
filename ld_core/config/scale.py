"""Scale profiles (configs/scales/*.yaml): the embedded default vs the paper's settings."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..files import load_yaml_file
from ..precision import MIXED_PRECISION_DTYPES
from .merge import merge

SCALE_KEYS = {"name", "data", "input_size", "model", "train", "schedules", "test"}
TRAIN_KEYS = {"loop", "batch_size", "num_workers", "optimizer", "warmup_iters", "warmup_ratio", "grad_clip",
              "ld_reference_images", "kd_reference_classes", "auto_scale_lr", "log_interval", "mixed_precision",
              "channels_last", "dcn_offset_lr_mult", "teacher_cache_mb"}
PROFILES = Path(__file__).resolve().parents[2] / "configs" / "scales"  # the project's profiles


def read_scale_file(path: str | Path, overrides: dict | None = None) -> dict:
    """A scale profile file with its ``_base_`` merged under it, and ``overrides`` (the pipeline config's
    ``scale_overrides``) over it.

    mmengine's config style: ``_base_: embedded.yaml`` plus the keys that differ (mappings merge recursively).
    ``_base_`` is relative to the file; a name not found there is one of the project's profiles
    (``configs/scales/``), so a profile of the user's own can live anywhere: ``_base_: paper.yaml``.
    """
    if overrides:
        return merge(read_scale_file(path), overrides)
    path = Path(path)
    scale = load_yaml_file(path, "scale profile") or {}
    if not isinstance(scale, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(scale).__name__}")
    base = scale.pop("_base_", None)
    if base is None:
        return scale
    base_path = path.parent / str(base)
    if not base_path.is_file() and (PROFILES / str(base)).is_file():
        base_path = PROFILES / str(base)
    if base_path.resolve() == path.resolve():
        raise ConfigError(f"{path}: _base_ names the file itself")
    return merge(read_scale_file(base_path), scale)


def load_scale(path: str | Path, overrides: dict | None = None) -> dict:
    """Load a scale profile (with ``overrides`` merged over it); unknown top-level keys or a missing section
    are one-line errors."""
    path = Path(path)
    scale = read_scale_file(path, overrides)
    unknown = sorted(set(scale) - SCALE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(SCALE_KEYS))})")
    missing = sorted(SCALE_KEYS - set(scale))
    if missing:
        raise ConfigError(f"{path}: missing key '{missing[0]}'")
    _check_train(path, scale["train"])
    scale["path"] = str(path)
    return scale


def _check_train(path: Path, train) -> None:
    """The ``train`` section: known keys only, a supported mixed-precision dtype."""
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: 'train' must be a mapping")
    unknown = sorted(set(train) - TRAIN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key 'train.{unknown[0]}' (allowed: {', '.join(sorted(TRAIN_KEYS))})")
    if train.get("mixed_precision") not in (None, *MIXED_PRECISION_DTYPES):
        raise ConfigError(f"{path}: train.mixed_precision must be bfloat16 or null, "
                          f"got {train['mixed_precision']!r}")
