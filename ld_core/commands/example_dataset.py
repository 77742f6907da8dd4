"""`ld_core example-dataset`: a small dataset laid out as your own would be, with its dataset files
(:mod:`ld_core.data.example`)."""
from __future__ import annotations

import argparse

from ..data.example import make_example


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=48)
    parser.add_argument("--num-val", type=int, default=24)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--max-objects", type=int, default=3)


def run(args: argparse.Namespace) -> int:
    out = make_example(args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                       image_size=args.image_size, max_objects=args.max_objects)
    print(f"[example-dataset] {out}: dataset.yaml (COCO format), dataset_voc.yaml (VOC format)")
    return 0
