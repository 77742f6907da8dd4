"""Recursive merge of config mappings (model files, scale overrides, ``_base_`` profiles)."""
from __future__ import annotations

import copy


def merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``, mappings recursively; a ``None`` value removes the key."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
