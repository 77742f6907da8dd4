"""`ld_core rehearsal-data`: the inputs of ``make rehearse``, a paper-profile run of every table on CPU.

Written under ``--out``, in the exact layouts and file names the paper profile reads:

- ``coco/``: ``annotations/instances_{train,val}2017.json``, ``train2017/``, ``val2017/``; COCO's 80 category
  ids (with their gaps) and names; images of several sizes and aspect ratios (landscape and portrait, so that
  keep-ratio batches differ in padded shape); ``iscrowd`` annotations; images without annotations.
- ``VOCdevkit/``: ``VOC2007`` (trainval, test) and ``VOC2012`` (trainval), VOC's 20 classes, ``difficult``
  objects.
- ``imagenet/``: random ImageNet weights in torchvision's format (``resnet18.pth`` ... ``resnet101.pth``, with
  ``fc``) and ``resnext101_32x4d.pth`` (open-mmlab's), for the paper backbones.
- ``released/gfl_r101_fpn_ms-2x_coco.pth``: a GFocal R-101 teacher in mmdetection's model-zoo format
  (mmcv 1.x: ``meta`` with ``CLASSES``, ``state_dict``), random weights.

``counts.json`` holds the image counts for the pipeline's ``data_check_counts``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config.builder import build_run_config
from ..config.matrix import load_matrix
from ..config.scale import load_scale
from ..data.rehearsal_inputs import imagenet_files, mini_coco, mini_voc, released_teacher


def teacher_model_cfg(run_id: str, out: Path) -> dict:
    """The paper-profile model config of a teacher run, as the pipeline resolves it."""
    project = Path(__file__).resolve().parents[2]
    run = load_matrix(project / "configs" / "experiments.yaml").run(run_id)
    cfg = build_run_config(run, run.seed if run.seed is not None else 1000,
                           load_scale(project / "configs" / "scales" / "paper.yaml"), results_dir=out,
                           classes=None, data_root=str(out), voc_root=str(out), pretrained_dir=str(out))
    return cfg["model"]


def make_rehearsal_inputs(out, *, coco_train=8, coco_val=4, voc=None) -> dict:
    out = Path(out).absolute()
    voc = voc or {("VOC2007", "trainval"): 4, ("VOC2012", "trainval"): 4, ("VOC2007", "test"): 3}
    counts = {**mini_coco(out / "coco", coco_train, coco_val), **mini_voc(out / "VOCdevkit", voc)}
    imagenet_files(out / "imagenet")
    released_teacher(out / "released" / "gfl_r101_fpn_ms-2x_coco.pth", teacher_model_cfg("gfl_r101_teacher", out))
    (out / "counts.json").write_text(json.dumps(counts, indent=1) + "\n")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for coco/, VOCdevkit/, imagenet/, released/")


def run(args: argparse.Namespace) -> int:
    counts = make_rehearsal_inputs(args.out)
    print(f"[rehearsal-data] {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
