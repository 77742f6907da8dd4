"""Teacher-student compatibility of two detector configs: what must agree for LD's outputs to align location by
location (head family, distribution branch, reg_max, priors per location, classes, input normalisation)."""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import TeacherMismatchError

_ANCHOR_KEYS = ("strides", "ratios", "octave_base_scale", "scales_per_octave")
_PREPROCESS_KEYS = ("mean", "std", "bgr_to_rgb")
# head type -> (family, has a general-distribution box branch); families must match teacher to student
HEAD_FAMILIES = {
    "GFLHead": ("gfl", True), "BatchedGFLHead": ("gfl", True), "LDGFLHead": ("gfl", True), "LDHead": ("gfl", True),
    "RetinaHead": ("retinanet", False), "DistRetinaHead": ("retinanet", True), "LDDistRetinaHead": ("retinanet", True),
    "FCOSHead": ("fcos", False), "DistFCOSHead": ("fcos", True), "LDDistFCOSHead": ("fcos", True),
    "ATSSHead": ("atss", False), "DistATSSHead": ("atss", True), "LDDistATSSHead": ("atss", True),
}
_POINT_HEAD_STRIDES = (4, 8, 16, 32, 64)  # mmdet AnchorFreeHead's default strides


def _get(cfg: Mapping, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)


def _as_plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def head_family(head: Mapping) -> tuple:
    """``(family, distribution)`` of a head config, e.g. ``('atss', True)`` for ``LDDistATSSHead``."""
    head_type = _get(head, "type")
    return HEAD_FAMILIES.get(head_type, (head_type, _get(head, "reg_max") is not None))


def distillation_signature(model_cfg: Mapping) -> dict:
    """What must agree between teacher and student for their outputs to align location by location."""
    head = _get(model_cfg, "bbox_head", {}) or {}
    family, distribution = head_family(head)
    anchors = _get(head, "anchor_generator", None)
    pre = _get(model_cfg, "data_preprocessor", {}) or {}
    sig = {
        "head family": family,
        "distribution branch": distribution,
        "num_classes": _get(head, "num_classes"),
        "reg_max": _get(head, "reg_max", 16) if distribution else None,
    }
    if anchors:
        ratios = _get(anchors, "ratios") or []
        scales = _get(anchors, "scales") or [None] * int(_get(anchors, "scales_per_octave") or 1)
        sig["anchors per location"] = len(ratios) * len(scales)
        for key in _ANCHOR_KEYS:
            sig[f"anchor {key}"] = _as_plain(_get(anchors, key))
    else:  # point head (FCOS): one prior per location
        sig["anchors per location"] = 1
        sig["point strides"] = _as_plain(_get(head, "strides", _POINT_HEAD_STRIDES))
    for key in _PREPROCESS_KEYS:
        sig[f"input {key}"] = _as_plain(_get(pre, key))
    return sig


def _describe(head: Mapping) -> str:
    family, distribution = head_family(head)
    return f"{family} ({_get(head, 'type')}{'' if distribution else ', no distribution branch'})"


def check_teacher_compat(student_model: Mapping, teacher_model: Mapping, student_name: str, teacher_name: str) -> None:
    """Raise :class:`TeacherMismatchError` (one line naming both configs) if the teacher cannot distil.

    Teacher and student need the same head family (e.g. both ATSS), both with the distribution box branch,
    and the same reg_max, strides, anchors per location (and anchor settings), classes and input
    normalisation.
    """
    s_sig, t_sig = distillation_signature(student_model), distillation_signature(teacher_model)
    prefix = f"teacher {teacher_name} does not match student {student_name}: "
    s_head, t_head = _get(student_model, "bbox_head", {}) or {}, _get(teacher_model, "bbox_head", {}) or {}
    if s_sig["head family"] != t_sig["head family"]:
        raise TeacherMismatchError(prefix + f"head {_describe(t_head)} (teacher) vs {_describe(s_head)} (student)")
    if not t_sig["distribution branch"] or not s_sig["distribution branch"]:
        raise TeacherMismatchError(prefix + f"LD needs a distribution box branch on both: head {_describe(t_head)} "
                                   f"(teacher) vs {_describe(s_head)} (student)")
    diffs = [f"{k} {t_sig.get(k)} (teacher) vs {s_sig.get(k)} (student)"
             for k in dict.fromkeys([*s_sig, *t_sig]) if s_sig.get(k) != t_sig.get(k)]
    if diffs:
        raise TeacherMismatchError(prefix + "; ".join(diffs))
