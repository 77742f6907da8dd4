"""`ld_core resolve`: write the mmdet config of one (run, seed) of the matrix."""
from __future__ import annotations

import argparse
import json

from ..config.dataset_file import dataset_cache, load_user_dataset
from ..config.matrix import load_matrix
from ..config.resolve import config_text, resolve_run_config
from ..config.scale import load_scale
from ..files import atomic_write_text


def user_dataset_of(dataset: str, args: argparse.Namespace):
    """The user's dataset that replaces the matrix dataset ``dataset`` ('coco'/'voc'), or None."""
    file = args.dataset if dataset == "coco" else args.voc_dataset
    if not file:
        return None
    return load_user_dataset(file, dataset, cache_dir=dataset_cache(args.results))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--matrix", required=True)
    parser.add_argument("--scale", required=True, help="scale profile YAML")
    parser.add_argument("--run", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--results", default="results")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--pretrained-dir", default=None)
    parser.add_argument("--voc-root", default=None)
    parser.add_argument("--dataset", default=None, help="the user's COCO-format dataset file (COCO runs)")
    parser.add_argument("--voc-dataset", default=None, help="the user's VOC-format dataset file (VOC runs)")
    parser.add_argument("--scale-overrides", type=json.loads, default=None, help="JSON merged over the profile")
    parser.add_argument("--rehearsal", type=json.loads, default=None, help="JSON: the rehearsal's caps (make rehearse)")
    parser.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    scale = load_scale(args.scale, args.scale_overrides)
    run_ = matrix.run(args.run)
    user = user_dataset_of(run_.dataset, args)
    cfg = resolve_run_config(matrix, run_.id, args.seed, scale, results=args.results, user_dataset=user,
                             data_root=args.data_root, pretrained_dir=args.pretrained_dir, voc_root=args.voc_root,
                             rehearsal=args.rehearsal)
    atomic_write_text(args.out, config_text(cfg))
    print(f"[resolve] {run_.id} seed {args.seed} ({scale['name']}) -> {args.out}")
    return 0
