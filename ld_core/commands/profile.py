"""`ld_core profile`: Table 3's complexity and speed columns for one trained run.

* params (M) and GFLOPs: the run's detector (and box branch) at the paper's full R-50-FPN architecture on a
  1280x800 input (ld_core.commands.complexity), whatever scale the run was trained at, as the paper counts them;
* FPS: the trained student alone (no teacher), batch 1, its own test pipeline incl. NMS, warm-up images
  excluded, mean over 3 runs (ld_core.commands.fps); the device is recorded next to the number.
"""
from __future__ import annotations

import argparse

from mmengine.config import Config

from ..errors import ConfigError, require_file
from ..files import atomic_write_json
from ..threads import pin_threads
from .complexity import INPUT_SIZE, complexity
from .fps import add_timing_arguments, measure_fps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved run config (config.py)")
    parser.add_argument("--checkpoint", required=True, help="the run's tensor-only checkpoint")
    parser.add_argument("--out", required=True, help="complexity.json (run, seed, metrics: params_M, GFLOPs, FPS)")
    add_timing_arguments(parser)


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    require_file(args.config, "config file")
    meta = Config.fromfile(args.config).get("ld_repro", {})
    if "detector" not in meta:
        raise ConfigError(f"{args.config}: no ld_repro.detector in the config (not written by `ld_core resolve`)")
    arch = complexity(meta["detector"], bool(meta.get("distribution", True)))
    speed = measure_fps(args.config, args.checkpoint, images=args.images, warmup=args.warmup, runs=args.runs,
                        device=args.device, threads=args.threads)
    result = dict(run=meta.get("run"), seed=meta.get("seed"),
                  metrics=dict(params_M=arch["params_M"], GFLOPs=arch["GFLOPs"], FPS=round(speed["fps"], 2)),
                  device_name=speed["device_name"], fps_std=speed["fps_std"], fps_threads=speed["threads"],
                  fps_input=f"the run's test pipeline ({meta.get('scale')} scale)",
                  complexity_input=f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]}, full R-50-FPN architecture",
                  params=arch["params"], flops=arch["flops"])
    atomic_write_json(args.out, result)
    m = result["metrics"]
    print(f"[profile] {meta.get('run')}: {m['params_M']:.2f} M params, {m['GFLOPs']:.2f} GFLOPs, "
          f"{m['FPS']:.1f} FPS on {speed['device_name']}")
    return 0
