"""`ld_core complexity`: trainable parameters and FLOPs of the paper's R-50-FPN detectors (Table 3).

The model is the paper's architecture as in mmdet 3.3's stock R-50 configs: R-50 with the stem and stage 1
frozen (as when starting from ImageNet weights, but nothing is loaded), FPN and the heads of
:func:`ld_core.config.detectors.detector_parts` at the paper profile's widths (256 channels × 4 convs, GN;
RetinaNet's head has no norm, as stock), 80 classes. FCOS uses mmdet's caffe-style R-50 with frozen BN, as its stock configs do (the
paper's 32.02 M / 200.50 G reflect it). Parameters are the trainable ones. FLOPs are mmengine's counter
(``FlopAnalyzer``, which ``get_model_complexity_info`` wraps; one fused multiply-add counts 1, i.e. MACs) of
the dummy forward (backbone + neck + head, no post-processing) at 1280×800, the default input shape of the
mmcv 1.x tool the paper used.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ..config.builder import model_test_cfg
from ..config.detectors import DETECTORS, detector_parts
from ..config.scale import load_scale
from ..files import atomic_write_json
from ..threads import pin_threads

PAPER_SCALE = Path(__file__).resolve().parents[2] / "configs" / "scales" / "paper.yaml"
INPUT_SIZE = (1280, 800)  # (w, h)
COCO_CLASSES = 80


def paper_model_cfg(detector: str, distribution: bool) -> dict:
    """The mmdet model config of one Table 3 row (R-50-FPN, 80 classes, no weights loaded)."""
    scale = load_scale(PAPER_SCALE)
    m = scale["model"]
    parts = detector_parts(detector, COCO_CLASSES, m, distribution=distribution, distill=None)
    caffe = detector == "fcos"
    backbone = dict(type="ResNet", depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                    norm_cfg=dict(type="BN", requires_grad=not caffe), norm_eval=True,
                    style="caffe" if caffe else "pytorch", init_cfg=None)
    neck = dict(type="FPN", in_channels=[256, 512, 1024, 2048], out_channels=m["neck_channels"], start_level=1,
                num_outs=5, **parts["neck"])
    return dict(type=parts["type"], data_preprocessor=dict(type="DetDataPreprocessor", pad_size_divisor=32),
                backbone=backbone, neck=neck, bbox_head=parts["bbox_head"], train_cfg=parts["train_cfg"],
                test_cfg=model_test_cfg(scale["test"]))


def build_paper_model(detector: str, distribution: bool):
    """Build :func:`paper_model_cfg` in eval mode."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    importlib.import_module("ld_core.models")  # registers the LD heads

    model = MODELS.build(paper_model_cfg(detector, distribution))
    model.eval()
    return model


def count_flops(model, input_size=INPUT_SIZE) -> int:
    """Multiply-accumulates of ``model``'s tensor-mode forward on one (3, h, w) zero image."""
    import torch
    from mmengine.analysis import FlopAnalyzer

    w, h = input_size
    analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, h, w),))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(analyzer.total())


def complexity(detector: str, distribution: bool, *, flops: bool = True) -> dict:
    """``dict(params_M, GFLOPs)`` (plus exact counts) of the paper's R-50-FPN ``detector`` (± distribution)."""
    model = build_paper_model(detector, distribution)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = dict(detector=detector, distribution=bool(distribution or detector == "gfl"), params=params,
               params_M=params / 1e6, input_size=list(INPUT_SIZE))
    if flops:
        macs = count_flops(model)
        out.update(flops=macs, GFLOPs=macs / 1e9)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", required=True, choices=DETECTORS)
    parser.add_argument("--distribution", action="store_true", help="the distribution box branch (LD rows)")
    parser.add_argument("--out", required=True, help="JSON with params_M and GFLOPs")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    result = complexity(args.detector, args.distribution)
    atomic_write_json(args.out, result)
    print(f"[complexity] {args.detector}{' (distribution)' if result['distribution'] else ''}: "
          f"{result['params_M']:.2f} M params, {result['GFLOPs']:.2f} GFLOPs at {INPUT_SIZE[0]}x{INPUT_SIZE[1]}")
    return 0
