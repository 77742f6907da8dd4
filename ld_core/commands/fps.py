"""`ld_core fps`: inference speed of a trained student (Table 3's FPS column).

Batch 1, the config's real test pipeline (its ``test_dataloader`` dataset: image loading, resize, packing)
and ``model.test_step`` (normalisation and padding, backbone + neck + head, box decoding, NMS). Only the
student is built (:func:`ld_core.models.trained.load_student`), never a teacher. What is timed is
``test_step`` per image, as mmdet's benchmark tool does (the data pipeline runs beforehand, untimed); the
first ``warmup`` images of every run are not timed; FPS is averaged over ``runs`` runs (mean and sample std).
The device name and thread count are recorded.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from mmdet.registry import DATASETS
from mmengine.dataset import pseudo_collate

from ..errors import ConfigError
from ..files import atomic_write_json
from ..models.trained import load_student
from ..threads import pin_threads


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def measure_fps(config_path, checkpoint, *, images: int = 20, warmup: int = 5, runs: int = 3, device: str = "cpu",
                threads: int = 1) -> dict:
    """Images per second of the student of ``config_path`` at batch 1 (see the module docstring)."""
    if images < 1 or warmup < 0 or runs < 1:
        raise ConfigError(f"fps: need images >= 1, warmup >= 0, runs >= 1 (got {images}, {warmup}, {runs})")
    pin_threads(threads)
    student = load_student(config_path, checkpoint, device)
    cfg, model = student.cfg, student.model
    dataset = DATASETS.build(cfg["test_dataloader"]["dataset"])
    if len(dataset) == 0:
        raise ConfigError(f"{config_path}: the test dataset is empty")
    batches = [pseudo_collate([dataset[i % len(dataset)]]) for i in range(warmup + images)]
    per_run = []
    with torch.no_grad():
        for _ in range(runs):
            elapsed = 0.0
            for i, batch in enumerate(batches):
                _synchronize(device)
                start = time.perf_counter()
                model.test_step(batch)
                _synchronize(device)
                if i >= warmup:
                    elapsed += time.perf_counter() - start
            per_run.append(images / elapsed)
    mean = statistics.fmean(per_run)
    return dict(fps=round(mean, 3), fps_std=round(statistics.stdev(per_run), 3) if runs > 1 else 0.0,
                fps_runs=[round(f, 3) for f in per_run], ms_per_image=round(1000.0 / mean, 2), batch_size=1,
                images=images, warmup=warmup, runs=runs, device=str(device), device_name=device_name(device),
                threads=int(threads), torch_threads=torch.get_num_threads(), detector=cfg["model"]["type"],
                head=cfg["model"]["bbox_head"]["type"], timed="model.test_step (preprocess, forward, decode, NMS)",
                config=str(config_path), checkpoint=str(checkpoint))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", required=True, help="tensor-only checkpoint of the student")
    parser.add_argument("--out", required=True, help="FPS JSON")
    add_timing_arguments(parser)


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :func:`measure_fps` (also taken by ``ld_core profile``)."""
    parser.add_argument("--images", type=int, default=20, help="timed images per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed images at the start of every run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    result = measure_fps(args.config, args.checkpoint, images=args.images, warmup=args.warmup, runs=args.runs,
                         device=args.device, threads=args.threads)
    atomic_write_json(args.out, result)
    print(f"[fps] {args.config}: {result['fps']:.2f} ± {result['fps_std']:.2f} img/s on {result['device_name']} "
          f"({result['threads']} thread(s))")
    return 0
