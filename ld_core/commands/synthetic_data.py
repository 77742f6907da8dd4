"""`ld_core data-synth`: the synthetic detection dataset, COCO json + VOC xml (:mod:`ld_core.data.synthetic`)."""
from __future__ import annotations

import argparse
import time

from ..data.synthetic import generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=400)
    parser.add_argument("--num-val", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-objects", type=int, default=6)
    parser.add_argument("--min-size-frac", type=float, default=1 / 16)
    parser.add_argument("--class-colour", type=lambda v: str(v).lower() in ("1", "true", "yes"), default=False,
                        help="true: each class has its own hue band")


def run(args: argparse.Namespace) -> int:
    start = time.time()
    info = generate(args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                    image_size=args.image_size, max_objects=args.max_objects, min_size_frac=args.min_size_frac,
                    class_colour=args.class_colour)
    tr, va = info["splits"]["train"], info["splits"]["val"]
    print(f"data-synth: {tr['images']} train / {va['images']} val images, {tr['annotations']} / "
          f"{va['annotations']} objects, {info['params']['image_size']} px, seed {info['params']['seed']}, "
          f"{time.time() - start:.1f} s -> {args.out}", flush=True)
    return 0
