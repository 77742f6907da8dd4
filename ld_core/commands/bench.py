"""Training-step benchmark: stock mmdet LD vs ours vs the plain GFL student, in one run.

Usage::

    python -m ld_core bench train [--scale {embedded,paper,tiny}] [--image-size W H] [--batch B]
                                  [--steps N] [--warmup W] [--device cuda|cpu] [--threads T]
                                  [--gt-per-image K] [--seed S] [--out FILE.json]

All variants are built from the same configs (``build_run_config`` of runs ``gfl_r18_ld_r101`` and
``gfl_r101_teacher`` under ``configs/scales/<scale>.yaml``; model only, no dataset is read), start from one
student state dict, distil from one random teacher saved as a tensor-only checkpoint, and train on one
synthetic batch (B random uint8 images of W×H, K random GT boxes each). A step is what mmengine's Runner
does per iteration: ``model.train_step`` = data preprocessor (host→device copy, normalise, pad) + forward +
losses + backward + SGD step. The first step of every variant runs before any update, so its losses are
comparable across variants.

Variants (``VARIANTS`` of :mod:`ld_core.commands.bench_variants`):
  stock      mmdet ``KnowledgeDistillationSingleStageDetector`` + ``LDHead`` + ``KnowledgeDistillationKLDivLoss``
  ours       ``LocalizationDistiller`` + ``LDGFLHead`` (``box_loss_normalize='ldhead'``, equal to stock)
  plain      the GFL student without distillation (the baseline)
  fast       ours on the fast path: bf16 autocast for backbone/neck/head convolutions of student and teacher,
             fp32 head outputs and losses (:mod:`ld_core.engine.mixed_precision`), channels_last on CUDA
  fastplain  plain on the same fast path, with the same batched ATSS targets as ``LDGFLHead``
             (``BatchedGFLHead``; the reference of fast's LD overhead)

JSON (``--out``) keys: ``device``, ``torch``, ``mmdet``, ``mmcv``, ``mmengine``, ``threads``,
``cudnn_benchmark``, ``scale``, ``image_size`` [W, H], ``batch``, ``steps``, ``warmup``, ``gt_per_image``,
``seed``, ``variants`` ({name: {images_per_s, median_step_s, step_times_s, peak_mem_gib (null on CPU),
first_step_losses}}), ``ratio_over_stock`` ({ours, fast}: images/s over stock's), ``ratio_ours_over_stock``,
``ld_overhead`` ({stock, ours, fast}: LD step time / its plain variant's step time), ``loss_check``
({variant: {reference, rtol, atol, losses: {name: {reference, value, abs_diff, rel_diff}}, max_abs_diff,
max_rel_diff, passed}}), ``passed``.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import torch
from mmdet.utils import register_all_modules
from mmengine.optim import OptimWrapper

from .. import models  # noqa: F401  (registers LocalizationDistiller, LDGFLHead, the LD loss)
from ..files import atomic_write_json
from ..threads import pin_threads
from . import step_profile
from .bench_variants import (SCALES, SGD, VARIANTS, Variant, build_variant, check_arguments, environment,
                             make_batch, model_configs, release, write_shared_weights)

COMPARED_LOSSES = ("loss_cls", "loss_bbox", "loss_dfl", "loss_ld")
REFERENCE = "stock"  # the LD variant every other LD variant's first-step losses are checked against


# ----------------------------------------------------------------------------------------------- timing
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(model, batch: dict, device: str, warmup: int, steps: int) -> dict:
    """Run warmup + steps training steps; step times (s), first-step losses and peak GPU memory."""
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), **SGD))
    times, first = [], None
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        log_vars = model.train_step(batch, optim)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if first is None:  # before any parameter update
            first = {k: float(torch.as_tensor(v).detach()) for k, v in log_vars.items()}
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    median = statistics.median(times)
    return dict(images_per_s=len(batch["inputs"]) / median, median_step_s=median, step_times_s=times,
                peak_mem_gib=peak, first_step_losses=first)


# ------------------------------------------------------------------------------------------ loss checks
def check_losses(reference: dict, other: dict, rtol: float, atol: float, reference_name: str) -> dict:
    """First-step losses of an LD variant against the reference's: per loss diffs and PASS/FAIL."""
    rows = {}
    for name in COMPARED_LOSSES + ("loss",):
        ref, val = reference[name], other[name]
        diff = abs(val - ref)
        rows[name] = dict(reference=ref, value=val, abs_diff=diff, rel_diff=diff / abs(ref) if ref else diff)
    passed = all(r["abs_diff"] <= atol + rtol * abs(r["reference"]) for r in rows.values())
    return dict(reference=reference_name, rtol=rtol, atol=atol, losses=rows,
                max_abs_diff=max(r["abs_diff"] for r in rows.values()),
                max_rel_diff=max(r["rel_diff"] for r in rows.values()), passed=passed)


# ------------------------------------------------------------------------------------------------ driver
def run_benchmark(scale: str = "embedded", image_size: Optional[tuple] = None, batch: int = 2, steps: int = 10,
                  warmup: int = 3, device: Optional[str] = None, threads: Optional[int] = None,
                  gt_per_image: int = 12, seed: int = 0, variants: Optional[List[Variant]] = None) -> dict:
    """Build, time and compare the variants; the result dict (see the module docstring for its keys)."""
    device = check_arguments(scale, image_size, batch, steps, warmup, device, threads, gt_per_image)
    if threads:
        pin_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    register_all_modules(init_default_scope=True)
    variants = variants or VARIANTS
    with tempfile.TemporaryDirectory(prefix="ld_bench_") as tmp:
        configs = model_configs(scale, Path(tmp))
        width, height = image_size or configs["scale"]["input_size"]
        student_state = write_shared_weights(configs, seed)
        data = make_batch(batch, width, height, gt_per_image, configs["plain"]["bbox_head"]["num_classes"], seed)
        results = {}
        for variant in variants:
            release(device)
            model = build_variant(variant, configs, student_state, device)
            results[variant.name] = time_steps(model, data, device, warmup, steps)
            del model
        release(device)

    overhead = {v.name: results[v.name]["median_step_s"] / results[v.plain]["median_step_s"]
                for v in variants if v.distilled and v.plain in results}
    checks = {v.name: check_losses(results[REFERENCE]["first_step_losses"], results[v.name]["first_step_losses"],
                                   v.rtol, v.atol, REFERENCE)
              for v in variants if v.distilled and v.name != REFERENCE and REFERENCE in results}
    ratios = {v.name: results[v.name]["images_per_s"] / results[REFERENCE]["images_per_s"]
              for v in variants if v.distilled and v.name != REFERENCE and REFERENCE in results}
    return dict(environment(device), scale=scale, image_size=[int(width), int(height)], batch=batch, steps=steps,
                warmup=warmup, gt_per_image=gt_per_image, seed=seed, variants=results,
                ratio_over_stock=ratios, ratio_ours_over_stock=ratios.get("ours"), ld_overhead=overhead,
                loss_check=checks, passed=all(c["passed"] for c in checks.values()))


# ------------------------------------------------------------------------------------------------ report
def format_report(res: dict) -> str:
    """The human-readable tables."""
    w, h = res["image_size"]
    lines = [f"LD training-step benchmark: scale {res['scale']}, {w}x{h}, batch {res['batch']}, "
             f"{res['gt_per_image']} GT/image, median of {res['steps']} steps after {res['warmup']} warm-up",
             f"device {res['device']} | torch {res['torch']} | mmdet {res['mmdet']} | mmcv {res['mmcv']} | "
             f"mmengine {res['mmengine']} | threads {res['threads']} | cudnn.benchmark {res['cudnn_benchmark']}",
             "",
             f"{'variant':<10} {'images/s':>10} {'step ms':>10} {'/stock':>7} {'LD/plain':>9} {'peak GiB':>9}"]
    for name, r in res["variants"].items():
        over, ratio = res["ld_overhead"].get(name), res["ratio_over_stock"].get(name)
        peak = "n/a" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.2f}"
        lines.append(f"{name:<10} {r['images_per_s']:>10.2f} {1000 * r['median_step_s']:>10.1f} "
                     f"{'' if ratio is None else f'{ratio:.3f}':>7} {'' if over is None else f'{over:.3f}':>9} "
                     f"{peak:>9}")
    lines.append("fast = ours with bf16 convolutions (fp32 losses); LD/plain: fast vs fastplain, else vs plain")
    for name, check in res["loss_check"].items():
        ref = check["reference"]
        lines += ["", f"first-step losses (before any update): {name} vs {ref}",
                  f"{'loss':<10} {ref:>14} {name:>14} {'abs diff':>10} {'rel diff':>10}"]
        for loss, row in check["losses"].items():
            lines.append(f"{loss:<10} {row['reference']:>14.7g} {row['value']:>14.7g} "
                         f"{row['abs_diff']:>10.2e} {row['rel_diff']:>10.2e}")
        verdict = "PASS" if check["passed"] else "FAIL"
        lines.append(f"max abs diff {check['max_abs_diff']:.2e}, max rel diff {check['max_rel_diff']:.2e}: "
                     f"{verdict} (|diff| <= {check['atol']:g} + {check['rtol']:g}*|{ref}|)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m ld_core bench train ...`` and ``bench profile ...`` (:mod:`ld_core.commands.step_profile`)."""
    sub = parser.add_subparsers(dest="bench", required=True)
    train = sub.add_parser("train", help="time training steps of the variants")
    train.add_argument("--scale", choices=SCALES, default="embedded", help="model sizes (configs/scales/<scale>.yaml)")
    train.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), help="default: the scale's input_size")
    train.add_argument("--batch", type=int, default=2)
    train.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    train.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    train.add_argument("--device", help="cuda if available, else cpu")
    train.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    train.add_argument("--gt-per-image", type=int, default=12)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="also write the results as JSON")
    step_profile.add_arguments(sub.add_parser("profile", help="where a training step's time goes (CPU), and its "
                                                             "convolutions' FLOPs over this machine's throughput"))


def run(args: argparse.Namespace) -> int:
    if args.bench == "profile":
        return step_profile.run(args)
    res = run_benchmark(scale=args.scale, image_size=args.image_size, batch=args.batch, steps=args.steps,
                        warmup=args.warmup, device=args.device, threads=args.threads,
                        gt_per_image=args.gt_per_image, seed=args.seed)
    print(format_report(res))
    if args.out:
        atomic_write_json(args.out, res)
        print(f"[bench] wrote {args.out}")
    return 0 if res["passed"] else 1
