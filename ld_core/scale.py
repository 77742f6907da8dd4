"""Scale profiles (configs/scales/*.yaml): the embedded default vs the paper's settings."""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .io import load_yaml_file

SCALE_KEYS = {"name", "data", "input_size", "model", "train", "schedules", "test"}


def load_scale(path: str | Path) -> dict:
    """Load a scale profile; unknown top-level keys or a missing section are one-line errors."""
    path = Path(path)
    scale = load_yaml_file(path, "scale profile") or {}
    if not isinstance(scale, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(scale).__name__}")
    unknown = sorted(set(scale) - SCALE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(SCALE_KEYS))})")
    missing = sorted(SCALE_KEYS - set(scale))
    if missing:
        raise ConfigError(f"{path}: missing key '{missing[0]}'")
    scale["path"] = str(path)
    return scale
