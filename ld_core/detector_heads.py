"""The detector-specific parts of a run's mmdet config (Table 3: RetinaNet, FCOS, ATSS, GFocal; ± LD).

:func:`detector_parts` gives the detector type, bbox head, train_cfg and the FPN options of each detector as
in mmdet 3.3's stock R-50 configs, scaled by the profile's ``model`` mapping:

* ``gfl``: ``GFLHead`` (always a distribution head), ATSS assigner; FPN ``on_output``.
* ``retinanet``: ``RetinaHead`` (no norm in the head, as stock), 9 anchors (3 scales × ratios 0.5/1/2),
  MaxIoU 0.5/0.4 assigner, focal loss, L1 on deltas; FPN ``on_input``. ``octave_base_scale`` is 4 at
  paper scale and ``4 · anchor_scale / 8`` when the profile sets ``anchor_scale`` (whose default, 8, is the
  GFocal/ATSS ``octave_base_scale``).
* ``fcos``: ``FCOSHead`` in mmdet's "center-normbbox-centeronreg-giou" setting (the paper's 38.6-AP
  FCOS, also the authors' LD config): centre sampling 1.5, centerness on the reg branch, conv bias, GIoU 1.0;
  FPN ``on_output`` with ReLU before the extra convs. The regress ranges (64/128/256/512 px) are scaled by
  ``anchor_scale / 8`` like the anchors. (Stock FCOS uses a caffe-style R-50 with frozen BN; the backbone
  is the caller's.)
* ``atss``: ``ATSSHead``, ATSS assigner (top-9), focal + GIoU 2.0 + centerness; FPN ``on_output``.

``distribution=True`` swaps in the distribution heads of :mod:`ld_core.models.dist_heads` (GIoU + DFL 0.25
on the integral-decoded boxes). ``distill`` (the run's ``distill`` mapping) turns the head into its LD
variant; see :data:`DISTILL_DEFAULTS` for the keys and their per-detector defaults.
"""
from __future__ import annotations

import copy
from typing import Optional

from .errors import ConfigError

DETECTORS = ("gfl", "retinanet", "fcos", "atss")
LD_MODES = ("main", "full")
DISTILL_KEYS = {"ld", "gt_box_losses", "ld_weight", "temperature", "ld_normalize", "true_kl", "kd_weight",
                "kd_temperature", "vlr_weight", "vlr_temperature", "vlr_weighting", "vlr_exclude_pos"}
STRIDES = [8, 16, 32, 64, 128]
REG_MAX = 16
INF = 1e8

# Defaults of the `distill` keys (ld_method.md §2; the authors' configs). RetinaNet: Main LD weight 5, KD T=8.
DISTILL_DEFAULTS = dict(
    ld="main",               # 'main': Main LD only (Tables 1/2/4); 'full': Main KD + Main LD + VLR LD ("Ours")
    gt_box_losses=True,      # false: GIoU and DFL weight 0 ("Individual LD")
    ld_weight=0.25,          # Main LD weight (retinanet: 5)
    temperature=10,          # Main LD temperature
    ld_normalize="reference",  # 'reference' (sum / 4) or 'per_positive'
    true_kl=False,           # sum the KL over bins instead of the reference mean (LD and VLR LD)
    kd_weight=10,            # Main KD weight ('full' only; 0 disables)
    kd_temperature=2,        # Main KD temperature (retinanet: 8)
    vlr_weight=0.25,         # VLR LD weight ('full' only; 0 disables)
    vlr_temperature=10,      # VLR LD temperature
    vlr_weighting="mask",    # 'mask' (the paper) or 'max_iou' (the authors' fork; not for fcos)
    vlr_exclude_pos=False,   # drop the positives from the VLR
)
DETECTOR_DISTILL_DEFAULTS = {"retinanet": dict(ld_weight=5, kd_temperature=8)}

_STOCK_TO_DIST = {"RetinaHead": "DistRetinaHead", "FCOSHead": "DistFCOSHead", "ATSSHead": "DistATSSHead"}
_LD_TYPES = {"GFLHead": "LDGFLHead", "DistRetinaHead": "LDDistRetinaHead", "DistFCOSHead": "LDDistFCOSHead",
             "DistATSSHead": "LDDistATSSHead"}
_PLAIN_TYPES = {**{ld: plain for plain, ld in _LD_TYPES.items()}, "LDHead": "GFLHead"}  # + mmdet's stock LDHead
LD_HEAD_KEYS = ("loss_ld", "ld_normalize", "box_loss_normalize", "loss_kd", "loss_ld_vlr", "vlr_weighting",
                "vlr_exclude_pos", "vlr_topk", "vlr_low")
_DETECTOR_TYPES = {"gfl": "GFL", "retinanet": "RetinaNet", "fcos": "FCOS", "atss": "ATSS"}


def _num(value: float):
    """An integral float as int (configs and teacher signatures stay tidy)."""
    return int(value) if float(value).is_integer() else float(value)


def _focal() -> dict:
    return dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


def _centerness() -> dict:
    return dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)


def _common(num_classes: int, m: dict, norm: bool = True) -> dict:
    head = dict(num_classes=num_classes, in_channels=m["neck_channels"], stacked_convs=m["head_stacked_convs"],
                feat_channels=m["head_feat_channels"])
    if norm:
        head["norm_cfg"] = dict(type="GN", num_groups=m["head_norm_groups"], requires_grad=True)
    return head


def _gfl(num_classes: int, m: dict) -> dict:
    head = dict(
        type="GFLHead", num_classes=num_classes, in_channels=m["neck_channels"],
        stacked_convs=m["head_stacked_convs"], feat_channels=m["head_feat_channels"],
        norm_cfg=dict(type="GN", num_groups=m["head_norm_groups"], requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=m.get("anchor_scale", 8),
                              scales_per_octave=1, strides=list(STRIDES)),
        loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25), reg_max=REG_MAX,
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0))
    train_cfg = dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False)
    return dict(bbox_head=head, train_cfg=train_cfg, neck=dict(add_extra_convs="on_output"))


def _retinanet(num_classes: int, m: dict, distribution: bool) -> dict:
    head = dict(type="RetinaHead", **_common(num_classes, m, norm=False),
                anchor_generator=dict(type="AnchorGenerator", octave_base_scale=_num(4 * m.get("anchor_scale", 8) / 8),
                                      scales_per_octave=3, ratios=[0.5, 1.0, 2.0], strides=list(STRIDES)),
                loss_cls=_focal())
    if distribution:
        head.update(type="DistRetinaHead", reg_max=REG_MAX, loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
                    loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25))
    else:
        head.update(bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                    loss_bbox=dict(type="L1Loss", loss_weight=1.0))
    train_cfg = dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                   ignore_iof_thr=-1),
                     sampler=dict(type="PseudoSampler"), allowed_border=-1, pos_weight=-1, debug=False)
    return dict(bbox_head=head, train_cfg=train_cfg, neck=dict(add_extra_convs="on_input"))


def _fcos(num_classes: int, m: dict, distribution: bool) -> dict:
    s = m.get("anchor_scale", 8) / 8
    bounds = [-1] + [_num(b * s) for b in (64, 128, 256, 512)] + [INF]
    head = dict(type="FCOSHead", **_common(num_classes, m), strides=list(STRIDES),
                regress_ranges=[[bounds[i], bounds[i + 1]] for i in range(5)],
                center_sampling=True, center_sample_radius=1.5, centerness_on_reg=True, conv_bias=True,
                loss_cls=_focal(), loss_bbox=dict(type="GIoULoss", loss_weight=1.0), loss_centerness=_centerness())
    if distribution:
        head.update(type="DistFCOSHead", reg_max=REG_MAX, loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25))
    else:
        head.update(norm_on_bbox=True)
    train_cfg = dict(allowed_border=-1, pos_weight=-1, debug=False)
    return dict(bbox_head=head, train_cfg=train_cfg, neck=dict(add_extra_convs="on_output",
                                                               relu_before_extra_convs=True))


def _atss(num_classes: int, m: dict, distribution: bool) -> dict:
    head = dict(type="ATSSHead", **_common(num_classes, m),
                anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=m.get("anchor_scale", 8),
                                      scales_per_octave=1, strides=list(STRIDES)),
                loss_cls=_focal(), loss_bbox=dict(type="GIoULoss", loss_weight=2.0), loss_centerness=_centerness())
    if distribution:
        head.update(type="DistATSSHead", reg_max=REG_MAX, loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25))
    else:
        head.update(bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                    target_stds=[0.1, 0.1, 0.2, 0.2]))
    train_cfg = dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False)
    return dict(bbox_head=head, train_cfg=train_cfg, neck=dict(add_extra_convs="on_output"))


def distill_settings(detector: str, distill: dict) -> dict:
    """The run's ``distill`` mapping completed with the (per-detector) defaults; unknown keys are errors."""
    unknown = sorted(set(distill) - DISTILL_KEYS)
    if unknown:
        raise ConfigError(f"unknown distill key(s) {', '.join(unknown)} (known: {', '.join(sorted(DISTILL_KEYS))})")
    d = {**DISTILL_DEFAULTS, **DETECTOR_DISTILL_DEFAULTS.get(detector, {}), **dict(distill)}
    if d["ld"] not in LD_MODES:
        raise ConfigError(f"distill.ld must be one of {', '.join(LD_MODES)}, got '{d['ld']}'")
    if detector == "fcos" and d["ld"] == "full" and d["vlr_weighting"] != "mask":
        raise ConfigError("distill.vlr_weighting must be 'mask' for fcos (points have no anchor box)")
    return d


def _add_distillation(head: dict, d: dict) -> None:
    head["type"] = _LD_TYPES[head["type"]]
    head["loss_ld"] = dict(type="LocalizationDistillationLoss", loss_weight=d["ld_weight"], T=d["temperature"],
                           true_kl=d["true_kl"])
    head["ld_normalize"] = d["ld_normalize"]
    if not d["gt_box_losses"]:  # Individual LD: L_reg and L_DFL disabled (weight 0)
        head["loss_bbox"]["loss_weight"] = 0.0
        head["loss_dfl"]["loss_weight"] = 0.0
    if d["ld"] == "full":
        if d["kd_weight"]:
            head["loss_kd"] = dict(type="KnowledgeDistillationKLDivLoss", loss_weight=d["kd_weight"],
                                   T=d["kd_temperature"])
        if d["vlr_weight"]:
            head["loss_ld_vlr"] = dict(type="LocalizationDistillationLoss", loss_weight=d["vlr_weight"],
                                       T=d["vlr_temperature"], true_kl=d["true_kl"])
            head["vlr_weighting"] = d["vlr_weighting"]
            if d["vlr_exclude_pos"]:
                head["vlr_exclude_pos"] = True


def detector_parts(detector: str, num_classes: int, m: dict, *, distribution: bool,
                   distill: Optional[dict]) -> dict:
    """``dict(type, bbox_head, train_cfg, neck)`` of one detector; ``neck`` holds FPN options to merge.

    ``m``: the scale profile's ``model`` mapping (neck_channels, head_feat_channels, head_stacked_convs,
    head_norm_groups, optional anchor_scale). ``distribution``: the GFocal-style box branch (always on for
    'gfl'). ``distill``: ``None`` (no teacher) or the run's ``distill`` mapping (needs the distribution branch).
    """
    if detector not in DETECTORS:
        raise ConfigError(f"unknown detector '{detector}' (known: {', '.join(DETECTORS)})")
    distribution = distribution or detector == "gfl"
    if distill is not None and not distribution:
        raise ConfigError(f"LD on '{detector}' needs the distribution box branch (distribution: true)")
    if detector == "gfl":
        parts = _gfl(num_classes, m)
    else:
        parts = {"retinanet": _retinanet, "fcos": _fcos, "atss": _atss}[detector](num_classes, m, distribution)
    if distill is not None:
        _add_distillation(parts["bbox_head"], distill_settings(detector, distill))
    return dict(type=_DETECTOR_TYPES[detector], **parts)


def student_head(head_cfg: dict) -> dict:
    """The plain head of an LD head config (no LD keys): what inference, FPS and evaluation build."""
    head = copy.deepcopy(dict(head_cfg))
    head["type"] = _PLAIN_TYPES.get(head.get("type"), head.get("type"))
    for key in LD_HEAD_KEYS:
        head.pop(key, None)
    return head
