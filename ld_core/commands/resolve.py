"""`ld_core resolve`: write the mmdet config of one (run, seed) of the matrix."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from ..io import atomic_write_text
from ..config.matrix import load_matrix
from ..config.builder import build_run_config, dataset_classes
from ..config.scale import load_scale


def run_dir(results: str | Path, run_id: str, seed: int) -> Path:
    """Folder of one run and seed: config.py, checkpoint.pth, train.log, metrics.json."""
    return Path(results) / "runs" / run_id / f"seed{seed}"


def config_text(cfg: dict) -> str:
    """Render a config dict as mmengine Python config text."""
    from mmengine.config import Config

    return Config(cfg).pretty_text


def user_dataset_of(dataset: str, args: argparse.Namespace):
    """The user's dataset that replaces the matrix dataset ``dataset`` ('coco'/'voc'), or None."""
    file = args.dataset if dataset == "coco" else args.voc_dataset
    if not file:
        return None
    from ..config.pipeline import dataset_cache
    from ..data.user_dataset import load_user_dataset

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
    if args.seed not in run_.seeds([args.seed]):
        raise ConfigError(f"{matrix.path}: run '{run_.id}' has the fixed seed {run_.seed}, not {args.seed}")
    teacher_cfg = teacher_ckpt = None
    teacher = matrix.teacher_of(run_.id)
    if teacher is not None:
        tdir = run_dir(args.results, *teacher).resolve()
        teacher_cfg, teacher_ckpt = str(tdir / "config.py"), str(tdir / "checkpoint.pth")
    cfg = build_run_config(run_, args.seed, scale, results_dir=args.results, classes=dataset_classes(scale, user),
                           data_root=args.data_root, pretrained_dir=args.pretrained_dir, voc_root=args.voc_root,
                           user_dataset=user, rehearsal=args.rehearsal, teacher_config=teacher_cfg, teacher_ckpt=teacher_ckpt)
    atomic_write_text(args.out, config_text(cfg))
    print(f"[resolve] {run_.id} seed {args.seed} ({scale['name']}) -> {args.out}")
    return 0
