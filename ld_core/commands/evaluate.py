"""`ld_core evaluate`: COCO AP (pycocotools via mmdet's CocoMetric) or VOC mAPs (VOCMetric) of a trained student."""
from __future__ import annotations

import argparse
import tempfile
import time

from mmengine.config import Config
from mmengine.runner import Runner

from ..data.dataset_config import validate_dataset_config
from ..data.ground_truth import consistent_ground_truth
from ..engine.config_text import memoize_pretty_text
from ..evaluation.metrics import check_scored, coco_metrics, voc_metrics
from ..errors import require_file
from ..files import atomic_write_json
from ..models.trained import load_weights, read_student_config
from ..threads import pin_threads

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True, help="metrics JSON")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
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
