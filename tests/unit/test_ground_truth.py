"""Boxes that training leaves out are left out of the evaluation too (ld_core/data/ground_truth.py): the rule
agrees with mmdet's own datasets, pycocotools / VOCMetric score them as training sees them, `ld_core evaluate`
gives the same metrics with or without such boxes, and the synthetic data has none (its metrics are unchanged)."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT
from ld_core.data.annotations import mmdet_leaves_out, read_coco, read_voc
from test_noise import _set_head  # a random detector with a small, non-zero AP


# (bbox, extra keys, reason) on a 64x64 image: what mmdet's CocoDataset.parse_data_info keeps or drops
CASES = [([10, 10, 0, 8], {}, "zero-area"), ([10, 10, 8, 0], {}, "zero-area"), ([10, 10, 8, 8], {"area": 0}, "zero-area"),
         ([10, 10, 0.5, 8], {}, "under-1px"), ([70, 10, 8, 8], {}, "outside"), ([-9, 10, 8, 8], {}, "outside"),
         ([10, 10, 8, 8], {"ignore": 1}, "ignore"), ([60, 60, 8, 8], {}, None), ([10, 10, 8, 8], {"iscrowd": 1}, None),
         ([1, 2, 1, 1], {}, None)]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from ld_core.data.example import make_example

    return make_example(tmp_path_factory.mktemp("gt") / "parts", num_train=4, num_val=6, image_size=64)


def _with_junk(data: dict, cases=CASES, every_image=False) -> tuple[dict, list]:
    """``data`` plus one annotation per case in every category (and on every image), ids after the last; the
    annotations added."""
    data = copy.deepcopy(data)
    next_id = max(a["id"] for a in data["annotations"]) + 1
    added = []
    for cat in data["categories"]:
        for k, (bbox, extra, _) in enumerate(cases * (len(data["images"]) if every_image else 1)):
            ann = {**dict(id=next_id, image_id=data["images"][k % len(data["images"])]["id"], category_id=cat["id"],
                          bbox=list(bbox), area=bbox[2] * bbox[3], iscrowd=0), **extra}
            data["annotations"].append(ann)
            added.append(ann)
            next_id += 1
    return data, added


def test_the_rule_is_mmdets_coco_dataset(example, tmp_path):
    from mmdet.datasets import CocoDataset

    for bbox, extra, reason in CASES:
        assert mmdet_leaves_out({"bbox": bbox, "area": bbox[2] * bbox[3], **extra}, 64, 64) == reason, bbox
    data = json.loads((example / "labels" / "val.json").read_text())
    data, _ = _with_junk(data)
    ann = tmp_path / "val.json"
    ann.write_text(json.dumps(data))
    names = tuple(c["name"] for c in data["categories"])
    dataset = CocoDataset(data_root=str(example), ann_file=str(ann), data_prefix=dict(img="pictures/val/"),
                          metainfo=dict(classes=names), pipeline=[], filter_cfg=None, serialize_data=False)
    kept_by_mmdet = sorted((info["img_id"], tuple(round(v, 3) for v in inst["bbox"]), inst["ignore_flag"])
                           for info in dataset.data_list for inst in info["instances"])
    sizes = {img["id"]: (img["width"], img["height"]) for img in data["images"]}
    ours = sorted((a["image_id"], tuple(round(v, 3) for v in (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                               a["bbox"][1] + a["bbox"][3])), int(a.get("iscrowd", 0)))
                  for a in data["annotations"] if mmdet_leaves_out(a, *sizes[a["image_id"]]) is None)
    assert kept_by_mmdet == ours
    info = read_coco(ann)
    assert sum(count for count, _ in info["left_out"].values()) == len(data["annotations"]) - len(ours)


def _coco_ap(gt_data: dict, detections: list, leave_out: bool) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from ld_core.data.ground_truth import leave_out_coco_boxes

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_data)
        gt.createIndex()
        if leave_out:
            leave_out_coco_boxes(gt)
        ev = COCOeval(gt, gt.loadRes(detections), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_pycocotools_scores_what_training_learns_from(example):
    """Perfect detections of the boxes training keeps: AP 1 once the left-out boxes leave the ground truth too."""
    data, added = _with_junk(json.loads((example / "labels" / "val.json").read_text()))
    sizes = {img["id"]: (img["width"], img["height"]) for img in data["images"]}
    detections = [dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
                  for a in data["annotations"]
                  if mmdet_leaves_out(a, *sizes[a["image_id"]]) is None and not a.get("iscrowd")]
    assert _coco_ap(data, detections, leave_out=True) == pytest.approx(1.0)
    assert _coco_ap(data, detections, leave_out=False) < 0.9  # stock pycocotools counts them as missed


def test_voc_metric_ignores_what_training_ignores(example, tmp_path):
    """VOCMetric with mmdet's training rule (bbox_min_size 1): a zero-width box is ignored, not missed."""
    from mmdet.datasets import VOCDataset
    from mmdet.evaluation import VOCMetric

    from ld_core.data.example import NAMES
    from ld_core.data.ground_truth import _voc

    voc = Path(shutil.copytree(example / "voc", tmp_path / "voc"))
    xml = voc / "parts" / "Annotations" / "val_000001.xml"
    text = xml.read_text()
    start = text.index("<xmax>") + len("<xmax>")
    xmin = text[text.index("<xmin>") + 6:text.index("</xmin>")]
    xml.write_text(text[:start] + xmin + text[text.index("</xmax>"):])  # first object: xmax = xmin
    info = read_voc(voc, "parts", "test", NAMES)
    assert info["left_out"]["zero-area"][0] == 1
    train_view = VOCDataset(data_root=str(voc), ann_file="parts/ImageSets/Main/test.txt",
                            data_prefix=dict(sub_data_root="parts/"), metainfo=dict(classes=NAMES), pipeline=[],
                            filter_cfg=dict(filter_empty_gt=False, bbox_min_size=1), serialize_data=False)
    ignored = [i for d in train_view.data_list for i in d["instances"] if i["ignore_flag"]]
    assert len(ignored) == 1  # training ignores exactly the box the check reports

    test_view = VOCDataset(data_root=str(voc), ann_file="parts/ImageSets/Main/test.txt",
                           data_prefix=dict(sub_data_root="parts/"), metainfo=dict(classes=NAMES), pipeline=[],
                           test_mode=True, serialize_data=False)
    results = []
    for d in test_view.data_list:
        boxes = np.array([i["bbox"] for i in d["instances"]], dtype=np.float32).reshape(-1, 4)
        labels = np.array([i["bbox_label"] for i in d["instances"]], dtype=np.int64)
        ann = dict(bboxes=boxes, labels=labels, bboxes_ignore=np.zeros((0, 4), np.float32),
                   labels_ignore=np.zeros(0, np.int64))
        kept = ((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)
        dets = [np.hstack([boxes[kept & (labels == c)], np.ones((int((kept & (labels == c)).sum()), 1))])
                for c in range(len(NAMES))]
        results.append((ann, dets))

    def m_ap(patched: bool) -> float:
        metric = VOCMetric(iou_thrs=[0.5], eval_mode="area")
        metric.dataset_meta = dict(classes=NAMES)
        counted = {"boxes": 0}
        if patched:
            _voc(metric, counted)
        value = metric.compute_metrics(copy.deepcopy(results))["mAP"]
        return value, counted["boxes"]

    assert m_ap(True) == (pytest.approx(1.0), 1)
    assert m_ap(False)[0] < 1.0


def test_synthetic_data_leaves_no_box_out(tmp_path):
    """Nothing to leave out in the pipeline's own data: its evaluation is exactly the stock one."""
    import yaml

    from ld_core.data.synthetic import generate

    for name in ("tiny", "embedded"):
        params = yaml.safe_load((ROOT / "configs" / "scales" / f"{name}.yaml").read_text())["data"]["synthetic"]
        out = tmp_path / name
        generate(out, **params)
        for split in ("train", "val"):
            info = read_coco(out / "coco" / "annotations" / f"instances_{split}.json")
            assert info["left_out"] == {} and info["usable"] == info["annotations"] > 0
        for split in ("trainval", "test"):
            info = read_voc(out / "VOCdevkit", "VOC2007", split)
            assert info["left_out"] == {} and info["usable"] == info["annotations"] > 0


# ------------------------------------------------------------------------------ `ld_core evaluate` end to end


def test_evaluate_gives_the_same_metrics_with_left_out_boxes(tmp_path):
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, ConfigDict
    from mmengine.runner import Runner

    import ld_core.models  # noqa: F401
    from ld_core.evaluation.metrics import coco_metrics
    from ld_core.config.resolve import config_text
    from ld_core.config.builder import build_run_config
    from ld_core.student import student_only
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale
    from ld_core.data.synthetic import CLASSES, generate

    register_all_modules(init_default_scope=True)
    results = tmp_path / "results"
    generate(results / "data" / "synthetic", seed=0, num_train=1, num_val=16, image_size=64, max_objects=3,
             class_colour=True)
    cfg = build_run_config(load_matrix(ROOT / "configs" / "experiments.yaml").run("gfl_r18"), 0,
                           load_scale(ROOT / "configs" / "scales" / "tiny.yaml"), results_dir=results, classes=CLASSES)
    cfg["model"]["test_cfg"].update(score_thr=0.0, max_per_img=100)
    config = tmp_path / "config.py"
    config.write_text(config_text(cfg))
    torch.manual_seed(1)
    model = MODELS.build(ConfigDict(student_only(cfg)["model"]))
    model.init_weights()
    state = _set_head(model.state_dict(), torch.Generator().manual_seed(1))
    torch.save({"state_dict": {n: v.detach().clone() for n, v in state.items()}, "meta": {}}, tmp_path / "ckpt.pth")

    def evaluate(out):  # as the pipeline runs it: one process each (mmengine keeps one visualizer per process)
        proc = subprocess.run([sys.executable, "-m", "ld_core", "evaluate", "--config", str(config), "--checkpoint",
                               str(tmp_path / "ckpt.pth"), "--out", str(out)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(out.read_text())

    clean = evaluate(tmp_path / "clean.json")
    assert "ground_truth_left_out" not in clean and clean["metrics"]["AP"] > 0  # nothing left out of synthetic data
    ann = results / "data" / "synthetic" / "coco" / "annotations" / "instances_val.json"
    junk_cases = [c for c in CASES if c[2] is not None]
    data, added = _with_junk(json.loads(ann.read_text()), junk_cases, every_image=True)
    ann.write_text(json.dumps(data))
    junk = evaluate(tmp_path / "junk.json")
    assert junk["metrics"] == clean["metrics"] and junk["ground_truth_left_out"] == len(added)
    stock = Config(student_only(Config.fromfile(str(config)).to_dict()))  # mmdet's own evaluation counts them
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler", "ld_repro"):
        stock.pop(key, None)
    stock.load_from, stock.work_dir = str(tmp_path / "ckpt.pth"), str(tmp_path / "stock")
    stock.visualizer = dict(type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")],
                            name=f"ground-truth-test-{tmp_path.name}")  # not an earlier Runner's (removed work dir)
    assert coco_metrics(Runner.from_cfg(stock).test())["AP"] < clean["metrics"]["AP"]
