"""Teacher handling: compatibility with the student, and tensor-only checkpoints (torch >= 2.6 safe)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import ConfigError, TeacherMismatchError

_HEAD_DEFAULTS = dict(reg_max=16)
_ANCHOR_KEYS = ("strides", "ratios", "octave_base_scale", "scales_per_octave")
_PREPROCESS_KEYS = ("mean", "std", "bgr_to_rgb")


def _get(cfg: Mapping, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)


def _as_plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def distillation_signature(model_cfg: Mapping) -> dict:
    """What must agree between teacher and student for their outputs to align location by location."""
    head = _get(model_cfg, "bbox_head", {})
    anchors = _get(head, "anchor_generator", {}) or {}
    pre = _get(model_cfg, "data_preprocessor", {}) or {}
    sig = {
        "num_classes": _get(head, "num_classes"),
        "reg_max": _get(head, "reg_max", _HEAD_DEFAULTS["reg_max"]),
    }
    for key in _ANCHOR_KEYS:
        sig[f"anchor {key}"] = _as_plain(_get(anchors, key))
    for key in _PREPROCESS_KEYS:
        sig[f"input {key}"] = _as_plain(_get(pre, key))
    return sig


def check_teacher_compat(student_model: Mapping, teacher_model: Mapping, student_name: str, teacher_name: str) -> None:
    """Raise :class:`TeacherMismatchError` (one line naming both configs) if the teacher cannot distil."""
    s_sig, t_sig = distillation_signature(student_model), distillation_signature(teacher_model)
    diffs = [f"{k} {t_sig[k]} (teacher) vs {s_sig[k]} (student)" for k in s_sig if s_sig[k] != t_sig[k]]
    if diffs:
        raise TeacherMismatchError(
            f"teacher {teacher_name} does not match student {student_name}: " + "; ".join(diffs))


def save_tensor_checkpoint(model: torch.nn.Module, path: str | os.PathLike, meta: Mapping | None = None) -> Path:
    """Save ``{'state_dict': tensors, 'meta': plain values}`` atomically; loadable with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"state_dict": state, "meta": dict(meta or {})}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_tensor_state_dict(path: str | os.PathLike) -> dict:
    """Load a tensor-only checkpoint with ``weights_only=True``; a clear one-line error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors are multi-line; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: not a tensor-only checkpoint ({first})") from None
    if isinstance(payload, Mapping) and "state_dict" in payload:
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise ConfigError(f"{path}: checkpoint holds no state dict")
    return dict(payload)
