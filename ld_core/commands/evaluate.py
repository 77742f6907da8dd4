"""`ld_core evaluate`: COCO AP (pycocotools via mmdet's CocoMetric) or VOC mAPs (VOCMetric) of a trained student."""
from __future__ import annotations

import argparse
import tempfile
import time

from ..config.builder import VOC_IOU_THRS
from ..data.dataset_config import validate_dataset_config
from ..data.ground_truth import consistent_ground_truth
from ..errors import ConfigError, DataError, require_file
from ..files import atomic_write_json
from ..threads import pin_threads

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="metrics JSON")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ..engine.config_text import memoize_pretty_text  # torch-free CLI: `--help` imports every command
    from ..models.trained import load_weights, read_student_config

    student = read_student_config(args.config)
    checkpoint = require_file(args.checkpoint, "checkpoint file")
    meta = student.meta
    cfg = Config(student.cfg)
    validate_dataset_config(cfg.test_dataloader.dataset.to_dict())
    dataset = meta.get("dataset", "coco")
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler"):
        cfg.pop(key, None)
    memoize_pretty_text()
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="ld-eval-") as work:
        cfg.work_dir = work
        runner = Runner.from_cfg(cfg)
        left_out = consistent_ground_truth(runner)  # the boxes training leaves out (none in the synthetic data)
        load_weights(runner.model, checkpoint, student.path)  # fit and finite, checked before inference
        raw = runner.test()
    metrics = voc_metrics(raw) if dataset == "voc" else coco_metrics(raw)
    check_scored(metrics, cfg.test_evaluator.get("ann_file", args.config), meta)
    result = dict(run=meta.get("run"), seed=meta.get("seed"), dataset=dataset, split="val" if dataset == "coco" else "test",
                  metrics=metrics, eval_seconds=round(time.time() - start, 1))
    if meta.get("dataset_file"):  # the user's dataset in the matrix dataset's place
        result["dataset_file"] = meta["dataset_file"]
    if left_out["boxes"]:  # as in training: see ld_core/data/ground_truth.py
        result["ground_truth_left_out"] = left_out["boxes"]
    if not raw:
        result["note"] = "no detection above the score threshold: AP reported as 0"
    atomic_write_json(args.out, result)
    print(f"[evaluate] {meta.get('run')} seed {meta.get('seed')}: " +
          ", ".join(f"{k} {v:.1f}" for k, v in result["metrics"].items() if v is not None))
    return 0
