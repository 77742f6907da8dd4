"""`ld_core figures`: Figures 1-2 and ``figures.json`` (:mod:`ld_core.report.figures`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..report.figures import make_figures
from ..report.redundant_boxes import ROLES
from ..threads import pin_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-config", required=True, help="GFocal baseline config.py")
    parser.add_argument("--baseline-checkpoint", required=True)
    parser.add_argument("--ld-config", required=True, help="LD student config.py (teacher is not loaded)")
    parser.add_argument("--ld-checkpoint", required=True)
    parser.add_argument("--ann", required=True, help="COCO val annotation file")
    parser.add_argument("--img-dir", required=True, help="folder the COCO file_name entries are relative to")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--num-images-fig1", type=int, default=4)
    parser.add_argument("--num-images-fig2", type=int, default=2)
    parser.add_argument("--score-thr", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    pin_threads(getattr(args, "threads", 1))
    written = make_figures(args.baseline_config, args.baseline_checkpoint, args.ld_config, args.ld_checkpoint,
                           args.ann, args.img_dir, args.out_dir, num_images_fig1=args.num_images_fig1,
                           num_images_fig2=args.num_images_fig2, score_thr=args.score_thr)
    summary = json.loads(Path(written["json"]).read_text())
    boxes = ", ".join(f"{p['model']}@{p['nms_iou']:g} {p['drawn']}" for p in summary["figure2"]["panels"])
    red = summary["nms_redundancy"]
    per_model = "; ".join(f"{role} " + ", ".join(f"{k} {v:g}" for k, v in red[role].items())
                          for role in ROLES.values())
    print(f"[figures] images {summary['figure1']['image_ids']}; fig 2 boxes: {boxes}; "
          f"wrote {', '.join(Path(p).name for p in written.values())} to {args.out_dir}")
    print(f"[figures] NMS redundancy over {red['images']} val images (score >= {red['score_thr']:g}): {per_model}")
    return 0
