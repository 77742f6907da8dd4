"""A run's metrics from mmdet's evaluators, in percent: COCO AP, AP50, AP75, APs/m/l (``CocoMetric``) or the VOC
mAP at each IoU 0.50:0.05:0.95 and their mean (``VOCMetric``); an unscorable split is an error."""
from __future__ import annotations

from ..config.builder import VOC_IOU_THRS
from ..errors import ConfigError, DataError

COCO_KEYS = {"AP": "bbox_mAP", "AP50": "bbox_mAP_50", "AP75": "bbox_mAP_75",
             "APs": "bbox_mAP_s", "APm": "bbox_mAP_m", "APl": "bbox_mAP_l"}


def coco_metrics(raw: dict) -> dict:
    """mmdet's ``coco/bbox_mAP*`` fractions -> AP, AP50, ... in percent.

    mmdet returns no metrics at all when the model made no detection above the score threshold;
    that is an AP of 0, not an error. pycocotools reports -1 for an area range with no ground truth
    (e.g. no large objects in small images): that is ``None`` (not applicable), never -100.
    """
    if not raw:
        return {name: 0.0 for name in COCO_KEYS}
    out = {}
    for name, key in COCO_KEYS.items():
        value = raw.get(f"coco/{key}")
        if value is None:
            raise ConfigError(f"evaluation returned no '{key}' (got: {', '.join(raw)})")
        out[name] = None if float(value) < 0 else round(100.0 * float(value), 2)
    return out


def voc_metrics(raw: dict) -> dict:
    """mmdet's VOCMetric (``pascal_voc/mAP`` over IoU 0.50:0.05:0.95, ``pascal_voc/APxx`` per IoU) -> percent.

    ``AP`` is the mean of the ten per-IoU mAPs (the supplement's Table 4 "AP"); every per-IoU value is kept
    (AP50, AP55, ..., AP95). No detection at all is an AP of 0.
    """
    if not raw:
        return {"AP": 0.0, **{f"AP{int(round(t * 100))}": 0.0 for t in VOC_IOU_THRS}}
    if "pascal_voc/mAP" not in raw:
        raise ConfigError(f"evaluation returned no 'pascal_voc/mAP' (got: {', '.join(raw)})")
    out = {"AP": round(100.0 * float(raw["pascal_voc/mAP"]), 2)}
    for t in VOC_IOU_THRS:
        key = f"AP{int(round(t * 100))}"
        out[key] = round(100.0 * float(raw[f"pascal_voc/{key}"]), 2)
    return out


def check_scored(metrics: dict, ann_file: str, meta: dict) -> None:
    """An AP of ``None`` (pycocotools' -1: no ground truth it scores) is an error, never an all-null metrics file."""
    if metrics.get("AP") is None:
        raise DataError(f"{ann_file}: no ground-truth box to score run '{meta.get('run')}' seed {meta.get('seed')} "
                        "against (every COCO metric is -1); no metrics file written")
