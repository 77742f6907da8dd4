"""`ld_core check-weights`: does a checkpoint file fit a resolved config? (what the Snakefile checks at parse time)

    python -m ld_core check-weights --config results/runs/gfl_r101_teacher/seed1000/config.py \\
        --detector /ckpt/gfl_r101_fpn_ms-2x_coco.pth
    python -m ld_core check-weights --config results/runs/gfl_r18/seed0/config.py --backbone resnet18.pth

One line per file: what fits (tensors, format), or ``error: <file>: <first mismatching keys or shapes>``.
"""
from __future__ import annotations

import argparse

from mmengine.config import Config

from ..errors import ConfigError, require_file
from ..models.fitting import fit_backbone, fit_detector
from .import_teacher import dataset_classes_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="a resolved config.py (a teacher's for --detector)")
    parser.add_argument("--detector", default=None, help="a detector checkpoint to fit to the config's model")
    parser.add_argument("--backbone", default=None,
                        help="ImageNet weights to fit to the config's backbone (default: its init_cfg checkpoint)")


def run(args: argparse.Namespace) -> int:
    require_file(args.config, "config file")
    cfg = Config.fromfile(args.config)
    model = cfg.model.to_dict()
    if model.get("type") == "LocalizationDistiller" and args.detector:
        raise ConfigError(f"{args.config}: a distilled student; give a teacher's config.py for --detector")
    if args.detector:
        print(fit_detector(args.detector, model, args.config, classes=dataset_classes_of(cfg))[2] + ": fits")
    backbone = args.backbone or ((model["backbone"].get("init_cfg") or {}).get("checkpoint") if not args.detector
                                 else None)
    if backbone:
        if "://" in str(backbone):
            raise ConfigError(f"{args.config}: the backbone weights are {backbone} (a download): nothing to check")
        print(fit_backbone(backbone, model["backbone"]) + ": fits")
    elif not args.detector:
        raise ConfigError(f"{args.config}: its backbone has no pretrained weights; give --backbone or --detector")
    return 0
