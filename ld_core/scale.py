"""Scale profiles (configs/scales/*.yaml): the embedded default vs the paper's settings."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError

SCALE_KEYS = {"name", "data", "input_size", "model", "train", "schedules", "test"}


def load_scale(path: str | Path) -> dict:
    """Load a scale profile; unknown top-level keys or a missing section are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: scale profile does not exist")
    try:
        scale = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path}: malformed YAML") from None
    unknown = sorted(set(scale) - SCALE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(SCALE_KEYS))})")
    missing = sorted(SCALE_KEYS - set(scale))
    if missing:
        raise ConfigError(f"{path}: missing key '{missing[0]}'")
    scale["path"] = str(path)
    return scale
