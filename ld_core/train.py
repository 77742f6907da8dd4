"""`ld_core train`: train one resolved config with mmengine's Runner; save a tensor-only checkpoint."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .errors import ConfigError
from .threads import pin_threads


def check_run_inputs(cfg, config_path: str) -> None:
    """Fail before training on missing/malformed data or an incompatible teacher (one-line errors)."""
    from .data.validate import validate_coco
    from .teacher import check_teacher_compat

    for loader in ("train_dataloader", "test_dataloader"):
        ds = cfg[loader]["dataset"]
        root = Path(ds["data_root"])
        validate_coco(root / ds["ann_file"], root / ds["data_prefix"]["img"])
    model = cfg["model"]
    if model.get("type") == "LocalizationDistiller":
        from mmengine.config import Config

        tcfg_path = Path(model["teacher_config"])
        if not tcfg_path.is_file():
            raise ConfigError(f"{config_path}: teacher config {tcfg_path} does not exist")
        if model.get("teacher_ckpt") and not Path(model["teacher_ckpt"]).is_file():
            raise ConfigError(f"{config_path}: teacher checkpoint {model['teacher_ckpt']} does not exist")
        check_teacher_compat(model, Config.fromfile(str(tcfg_path)).model, config_path, str(tcfg_path))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved mmdet config (config.py)")
    parser.add_argument("--checkpoint", required=True, help="where to write the tensor-only checkpoint")
    parser.add_argument("--work-dir", required=True, help="mmengine scratch folder (logs, resumable checkpoints)")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from .teacher import save_tensor_checkpoint

    if not Path(args.config).is_file():
        raise ConfigError(f"{args.config}: config file does not exist")
    cfg = Config.fromfile(args.config)
    check_run_inputs(cfg, args.config)
    cfg.work_dir = str(Path(args.work_dir).resolve())
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    meta = dict(cfg.get("ld_repro", {}), iters=int(runner.iter), train_seconds=round(time.time() - start, 1))
    meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
    save_tensor_checkpoint(model, args.checkpoint, meta)
    print(f"[train] {args.config}: {runner.iter} iterations in {time.time() - start:.1f} s -> {args.checkpoint}")
    return 0
