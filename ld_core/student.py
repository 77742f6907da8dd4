"""The plain student of a (possibly distilled) config, as pure dicts: which LD head is which plain head.

Torch-free (the config layer imports it when a config is resolved); the model loader
(:mod:`ld_core.models.trained`) and the export build what :func:`student_only` returns.
"""
from __future__ import annotations

import copy

LD_TYPES = {"GFLHead": "LDGFLHead", "DistRetinaHead": "LDDistRetinaHead", "DistFCOSHead": "LDDistFCOSHead",
            "DistATSSHead": "LDDistATSSHead"}  # plain head -> its LD head
PLAIN_TYPES = {**{ld: plain for plain, ld in LD_TYPES.items()}, "LDHead": "GFLHead"}  # + mmdet's stock LDHead
LD_HEAD_KEYS = ("loss_ld", "ld_normalize", "ld_rows", "box_loss_normalize", "loss_kd", "loss_ld_vlr",
                "vlr_weighting", "vlr_avg_factor", "vlr_exclude_pos", "vlr_topk", "vlr_low")


def student_head(head_cfg: dict) -> dict:
    """The plain head of an LD head config (no LD keys): what inference, FPS and evaluation build."""
    head = copy.deepcopy(dict(head_cfg))
    head["type"] = PLAIN_TYPES.get(head.get("type"), head.get("type"))
    for key in LD_HEAD_KEYS:
        head.pop(key, None)
    return head


def student_only(cfg: dict) -> dict:
    """The plain-mmdet student of a (possibly distilled) config: its detector and plain head, no teacher."""
    cfg = copy.deepcopy(cfg)
    model = cfg["model"]
    if model.get("type") == "LocalizationDistiller":
        model["type"] = model.pop("student_type", "GFL")
        model.pop("teacher_config", None)
        model.pop("teacher_ckpt", None)
        model.pop("teacher_cache_mb", None)
    model["bbox_head"] = student_head(model["bbox_head"])
    return cfg
