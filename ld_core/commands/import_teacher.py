"""`ld_core import-teacher`: a released teacher checkpoint -> the pipeline's tensor-only checkpoint of that run.

The rule ``import_teacher`` (a local job) runs this instead of training a teacher named in the pipeline config's
``teacher_checkpoints``. The teacher model is built from its resolved ``config.py`` (the file evaluation and the
students read), the user's file is loaded with ``weights_only=True`` and the allow-list of
:func:`ld_core.models.checkpoints.checkpoint_safe_globals` (mmengine and mmcv 1.x / mmdet 2.x model-zoo files, or
a bare state dict; ``module.`` stripped), its keys and shapes must be exactly the model's, and the weights are
loaded strictly and saved as ``{'state_dict', 'meta'}`` tensors: what a trained teacher's checkpoint.pth is.
The same key/shape check ran when the Snakefile was parsed (:mod:`ld_core.config.weights`); it runs again here
against the resolved file, in case the checkpoint changed since.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
from mmdet.datasets import CocoDataset, VOCDataset
from mmengine.config import Config

from ..errors import ConfigError, require_file
from ..models.checkpoints import save_tensor_checkpoint
from ..models.fitting import build_model, fit_detector
from ..threads import pin_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the teacher's resolved config.py")
    parser.add_argument("--source", required=True, help="the released checkpoint (teacher_checkpoints)")
    parser.add_argument("--out", required=True, help="tensor-only checkpoint to write (the run's checkpoint.pth)")
    parser.add_argument("--threads", type=int, default=1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_classes_of(cfg) -> tuple:
    """Class names of the config's test dataset (its metainfo, else mmdet's COCO / VOC names)."""
    dataset = cfg.test_dataloader.dataset
    meta = dataset.get("metainfo") or {}
    if meta.get("classes"):
        return tuple(meta["classes"])
    return tuple((VOCDataset if dataset.get("type") == "VOCDataset" else CocoDataset).METAINFO["classes"])


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    config, source = require_file(args.config, "teacher config"), Path(args.source)
    start = time.perf_counter()
    cfg = Config.fromfile(str(config))
    if cfg.model.get("type") == "LocalizationDistiller":
        raise ConfigError(f"{config}: a teacher must be a plain detector, not a distiller")
    info = cfg.get("ld_repro", {})
    run_id, seed = info.get("run", config.parent.parent.name), info.get("seed", config.parent.name[len("seed"):])
    model = build_model(cfg.model.to_dict(), device="cpu")
    state, meta, summary = fit_detector(source, cfg.model.to_dict(), f"teacher {run_id} seed{seed}",
                                        classes=dataset_classes_of(cfg), model=model)
    own = model.state_dict()
    filled = [k for k in own if k not in state]  # only what fit_detector allows: BN counters, DERIVED_BUFFERS
    state = {**{k: own[k] for k in filled}, **state}
    with torch.no_grad():
        model.load_state_dict(state, strict=True)  # copies into the model's own dtype (fp16 files -> fp32)
    out = save_tensor_checkpoint(model, args.out, dict(
        run=str(run_id), seed=int(seed), scale=str(info.get("scale", "")), imported_from=str(source.resolve()),
        source_format=meta["format"], source_version=meta.get("version") or "", source_sha256=_sha256(source)))
    print(f"[import] {summary}" + (f"; filled from the model: {', '.join(filled[:4])}"
                                   + (" ..." if len(filled) > 4 else "") if filled else ""), flush=True)
    print(f"[import] {source} -> {out} ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0
