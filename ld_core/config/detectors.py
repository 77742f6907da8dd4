"""The detector-specific parts of a run's mmdet config, merged from the files in ``configs/models/``.

:func:`detector_parts` gives the detector type, bbox head, train_cfg and FPN options of one detector
(RetinaNet, FCOS, ATSS, GFocal; ± distribution box branch; ± LD): ``configs/models/<detector>.yaml`` →
its ``distribution_head`` → the scale profile's ``model.heads.<detector>`` → the profile's widths and the
dataset's classes → the LD keys of ``configs/models/distill.yaml`` (merge order: ``configs/models/README.md``).
Every run, Table 3's complexity count and the benchmark's models are built here.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from ..files import load_yaml_file
from ..student import LD_TYPES
from .merge import merge

MODELS_DIR = Path(__file__).resolve().parents[2] / "configs" / "models"
DETECTORS = ("gfl", "retinanet", "fcos", "atss")
LD_MODES = ("main", "full")

@lru_cache(maxsize=None)
def _model_file(name: str) -> dict:
    return load_yaml_file(MODELS_DIR / f"{name}.yaml", "model settings file")


def model_file(name: str) -> dict:
    """A copy of ``configs/models/<name>.yaml``."""
    return copy.deepcopy(_model_file(name))


def backbones() -> dict:
    """Backbone name -> ResNet/ResNeXt settings (``configs/models/backbones.yaml``)."""
    return model_file("backbones")


def distill_defaults() -> dict:
    """``configs/models/distill.yaml``: ``{'defaults': {...}, 'detectors': {detector: {...}}}``."""
    return model_file("distill")


DISTILL_KEYS = frozenset(_model_file("distill")["defaults"])


def ld_batch_factor(train: Optional[dict]) -> Optional[float]:
    """``ld_reference_images / batch_size`` of a profile's ``train`` section (``None`` when it sets no reference).

    The reference Main LD (and VLR LD) is a *sum* over the batch's positives divided by a constant, so its
    magnitude grows with the images per GPU; the published weights were tuned at 2 images/GPU.
    """
    ref = (train or {}).get("ld_reference_images")
    return float(ref) / float(train["batch_size"]) if ref else None


def kd_class_factor(train: Optional[dict], num_classes: Optional[int]) -> Optional[float]:
    """``num_classes / kd_reference_classes`` of a profile's ``train`` section (``None`` without a reference).

    Main KD is the KL *averaged* over the classes (the fork's kd_loss.py), so with 4 classes it is 20x
    stronger per positive than with COCO's 80, for which the published weight was set.
    """
    ref = (train or {}).get("kd_reference_classes")
    return float(num_classes) / float(ref) if ref and num_classes else None


def distill_settings(detector: str, distill: dict, train: Optional[dict] = None,
                     num_classes: Optional[int] = None) -> dict:
    """The run's ``distill`` mapping completed with the defaults, the detector's and its preset's keys.

    Merge order: ``defaults`` -> ``detectors.<detector>`` -> ``presets.<preset>.<detector>`` -> the run's
    keys. ``ld_weight`` (with the reference normalisation) and ``vlr_weight`` are multiplied by
    :func:`ld_batch_factor`, ``kd_weight`` by :func:`kd_class_factor`, here, where they are set.
    """
    unknown = sorted(set(distill) - DISTILL_KEYS)
    if unknown:
        raise ConfigError(f"unknown distill key(s) {', '.join(unknown)} (known: {', '.join(sorted(DISTILL_KEYS))})")
    spec = distill_defaults()
    preset = distill.get("preset", spec["defaults"]["preset"])
    presets = spec.get("presets") or {}
    if preset not in presets:
        raise ConfigError(f"distill.preset '{preset}' is not defined in {MODELS_DIR / 'distill.yaml'} "
                          f"(presets: {', '.join(presets)})")
    d = {**spec["defaults"], **spec["detectors"].get(detector, {}), **(presets[preset] or {}).get(detector, {}),
         **dict(distill)}
    if d["ld"] not in LD_MODES:
        raise ConfigError(f"distill.ld must be one of {', '.join(LD_MODES)}, got '{d['ld']}'")
    if detector == "fcos" and d["ld"] == "full" and d["vlr_weighting"] == "max_iou":
        raise ConfigError("distill.vlr_weighting 'max_iou' is not defined for fcos (points have no anchor box)")
    factor = ld_batch_factor(train)
    if factor is not None:
        if d["ld_normalize"] == "reference":
            d["ld_weight"] = d["ld_weight"] * factor
        d["vlr_weight"] = d["vlr_weight"] * factor
    kd_factor = kd_class_factor(train, num_classes)
    if kd_factor is not None:
        d["kd_weight"] = d["kd_weight"] * kd_factor
    return d


def _add_distillation(head: dict, d: dict) -> None:
    head["type"] = LD_TYPES[head["type"]]
    head["loss_ld"] = dict(type="LocalizationDistillationLoss", loss_weight=d["ld_weight"], T=d["temperature"],
                           true_kl=d["true_kl"])
    head["ld_normalize"] = d["ld_normalize"]
    head["ld_rows"] = d["ld_rows"]
    if not d["gt_box_losses"]:  # Individual LD: L_reg and L_DFL disabled (weight 0)
        head["loss_bbox"]["loss_weight"] = 0.0
        if head.get("loss_dfl"):
            head["loss_dfl"]["loss_weight"] = 0.0
    if d["ld"] == "full":
        if d["kd_weight"]:
            head["loss_kd"] = dict(type="KnowledgeDistillationKLDivLoss", loss_weight=d["kd_weight"],
                                   T=d["kd_temperature"])
        if d["vlr_weight"]:
            head["loss_ld_vlr"] = dict(type="LocalizationDistillationLoss", loss_weight=d["vlr_weight"],
                                       T=d["vlr_temperature"], true_kl=d["true_kl"])
            head["vlr_weighting"] = d["vlr_weighting"]
            head["vlr_avg_factor"] = d["vlr_avg_factor"]
            if d["vlr_exclude_pos"]:
                head["vlr_exclude_pos"] = True


def _apply_widths(head: dict, num_classes: int, m: dict) -> None:
    """The profile's widths and the dataset's class count on a head of a model file."""
    head.update(num_classes=num_classes, in_channels=m["neck_channels"], stacked_convs=m["head_stacked_convs"],
                feat_channels=m["head_feat_channels"])
    if "norm_cfg" in head:
        head["norm_cfg"]["num_groups"] = m["head_norm_groups"]


def detector_parts(detector: str, num_classes: int, m: dict, *, distribution: bool,
                   distill: Optional[dict], train: Optional[dict] = None) -> dict:
    """``dict(type, bbox_head, train_cfg, neck)`` of one detector; ``neck`` holds FPN options to merge.

    ``m``: the scale profile's ``model`` mapping (widths; ``heads``: per-detector overrides of the model
    files). ``distribution``: the GFocal-style box branch (always on for 'gfl'). ``distill``: ``None`` (no
    teacher) or the run's ``distill`` mapping (needs the distribution branch). ``train``: the profile's
    ``train`` section (LD weights per images per batch).
    """
    if detector not in DETECTORS:
        raise ConfigError(f"unknown detector '{detector}' (known: {', '.join(DETECTORS)})")
    distribution = distribution or detector == "gfl"
    if distill is not None and not distribution:
        raise ConfigError(f"LD on '{detector}' needs the distribution box branch (distribution: true)")
    spec = model_file(detector)
    head = spec["bbox_head"]
    if distribution:
        head = merge(head, spec["distribution_head"])
    scale_overrides = (m.get("heads") or {}).get(detector) or {}
    head = merge(head, scale_overrides.get("bbox_head") or {})
    _apply_widths(head, num_classes, m)
    if distill is not None:
        _add_distillation(head, distill_settings(detector, distill, train, num_classes))
    return dict(type=spec["detector"], bbox_head=head, train_cfg=spec["train_cfg"], neck=spec["neck"])
