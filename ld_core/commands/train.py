"""`ld_core train`: train one resolved config with mmengine's Runner; save a tensor-only checkpoint.

- Device and processes come from the job's GPUs (``--gpus``, see :mod:`ld_core.commands.launch`): N > 1 GPUs
  re-execute this command under torchrun (one DDP process per GPU, mmengine ``launcher='pytorch'``).
- Resumable: the work dir (``results/work/<run>/seed<k>``, not a rule output) keeps mmengine's checkpoints,
  and a rerun of the same config (a Snakemake retry after a time limit, preemption, a crash) resumes from
  its ``last_checkpoint`` (mmengine ``resume=True``). A work dir written for another config is cleared
  first. torch >= 2.6 loads them with ``weights_only=True``: exactly the non-tensor types mmengine stores
  are allow-listed (:func:`allow_mmengine_checkpoint_globals`), never ``weights_only=False``.
- The final tensor-only checkpoint (the rule's output) is written atomically by rank 0 at the end.
- A loss or gradient norm that becomes NaN/inf stops training at that iteration
  (:class:`~ld_core.engine.nonfinite.NonFiniteLossHook`, added here to every run): one line naming the run, the
  iteration and the losses, exit status 2 and no checkpoint; weights that are not finite are never saved.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from ..data.dataset_config import validate_dataset_config
from ..engine.config_text import memoize_pretty_text
from ..engine.nonfinite import NonFiniteTrainingError, nonfinite_tensors
from ..errors import ConfigError, require_file
from ..files import atomic_write_text
from ..models.batched_atss import TARGET_PATHS
from ..models.checkpoints import checkpoint_safe_globals, save_tensor_checkpoint
from ..models.compat import check_teacher_compat
from ..models.fitting import fit_backbone
from ..threads import pin_threads
from .launch import child_env, dist_rank, init_distributed, plan_launch, torchrun_argv

CONFIG_STAMP = "ld_repro_config.sha256"  # in the work dir: which config its checkpoints belong to
DIVERGED = "ld_repro_diverged.txt"  # in the work dir: the config digest and error line of a diverged training


def check_run_inputs(cfg, config_path: str) -> None:
    """Fail before training on missing/malformed data or an incompatible teacher (one-line errors)."""
    for loader in ("train_dataloader", "test_dataloader"):
        validate_dataset_config(cfg[loader]["dataset"])
    model = cfg["model"]
    if model.get("type") == "LocalizationDistiller":
        tcfg_path = Path(model["teacher_config"])
        if not tcfg_path.is_file():
            raise ConfigError(f"{config_path}: teacher config {tcfg_path} does not exist")
        if model.get("teacher_ckpt") and not Path(model["teacher_ckpt"]).is_file():
            raise ConfigError(f"{config_path}: teacher checkpoint {model['teacher_ckpt']} does not exist")
        check_teacher_compat(model, Config.fromfile(str(tcfg_path)).model, config_path, str(tcfg_path))


def pretrained_backbone_line(cfg) -> Optional[str]:
    """What the backbone starts from, for the train log; a local ImageNet file that does not fit the backbone
    (missing keys, another depth, truncated) is a one-line error here, before mmengine's ``Pretrained`` init
    would only log the missing keys and train from scratch. ``None`` without ImageNet weights."""
    backbone = cfg["model"]["backbone"]
    init = backbone.get("init_cfg") or {}
    if init.get("type") != "Pretrained" or not init.get("checkpoint"):
        return None
    ckpt = str(init["checkpoint"])
    if "://" in ckpt:
        return f"[train] pretrained backbone: {ckpt}, downloaded by mmengine (allow_downloads: true; not checked)"
    backbone = backbone.to_dict() if hasattr(backbone, "to_dict") else dict(backbone)
    return f"[train] pretrained backbone: {fit_backbone(ckpt, backbone)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="resolved mmdet config (config.py)")
    parser.add_argument("--checkpoint", required=True, help="where to write the tensor-only checkpoint")
    parser.add_argument("--work-dir", required=True, help="mmengine scratch folder (logs, resumable checkpoints)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per training process")
    parser.add_argument("--gpus", type=int, default=0,
                        help="GPUs granted to the job (the rule passes resources.gpu): 0 = mmengine's default "
                             "device, N > 1 = N torchrun processes; CPU with a warning when CUDA is unavailable")
    parser.add_argument("--procs", type=int, default=None,
                        help="force this many processes (default: one per GPU); without GPUs: CPU + gloo")
    parser.add_argument("--launcher", choices=("none", "pytorch"), default="none",
                        help=argparse.SUPPRESS)  # set by the torchrun re-launch for its child processes


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list for ``torch.load(weights_only=True)`` exactly the non-tensor globals of mmengine's resumable
    checkpoints (:func:`ld_core.models.checkpoints.checkpoint_safe_globals`), process-wide: mmengine's own
    ``load_checkpoint`` calls ``torch.load`` when it resumes."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def _checkpoint_files(work_dir: Path) -> list:
    return [p for p in [work_dir / "last_checkpoint", *work_dir.glob("iter_*.pth"), *work_dir.glob("epoch_*.pth")]
            if p.is_file()]


def prepare_work_dir(work_dir: str | Path, config_path: str | Path) -> Optional[Path]:
    """Make ``work_dir`` resumable for this config; return the checkpoint training will resume from (or None).

    mmengine resumes from the checkpoint named in ``work_dir/last_checkpoint``. Checkpoints written for a
    different config (the stamp differs, or there is none: the run was re-resolved, or predates resuming)
    would continue another experiment: they are removed and training starts from scratch.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
    stamp = work_dir / CONFIG_STAMP
    stale = _checkpoint_files(work_dir)
    if stale and (not stamp.is_file() or stamp.read_text().strip() != digest):
        for path in stale:
            path.unlink()
        print(f"[train] {work_dir}: removed {len(stale)} checkpoint file(s) of another config; training from scratch",
              flush=True)
    atomic_write_text(stamp, digest + "\n")
    last = work_dir / "last_checkpoint"
    if last.is_file():
        ckpt = Path(last.read_text().strip())
        return ckpt if ckpt.is_file() else None
    return None


def refuse_diverged(work_dir: str | Path, config_path: str | Path) -> None:
    """A training that diverged with this very config diverges again (same seed, same data order): a retry or
    rerun fails at once with the first error instead of training up to the same NaN (a changed config trains)."""
    marker = Path(work_dir) / DIVERGED
    if not marker.is_file():
        return
    digest, _, line = marker.read_text().partition("\n")
    if digest.strip() == hashlib.sha256(Path(config_path).read_bytes()).hexdigest():
        raise NonFiniteTrainingError(f"{line.strip()} (an earlier attempt with this config; not retried: delete "
                                     f"{marker} to train it again)")


def record_diverged(work_dir: str | Path, config_path: str | Path, line: str) -> None:
    """Remember that ``config_path`` diverged (:func:`refuse_diverged`)."""
    digest = hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
    atomic_write_text(Path(work_dir) / DIVERGED, f"{digest}\n{line}\n")


def lr_scaling_line(cfg, world_size: int) -> Optional[str]:
    """mmengine's auto_scale_lr made explicit: lr x (world size x batch per process) / base batch."""
    auto = cfg.get("auto_scale_lr") or {}
    if not auto.get("enable", False):
        return None
    per_proc, base = int(cfg.train_dataloader.batch_size), int(auto["base_batch_size"])
    real, lr = world_size * per_proc, float(cfg.optim_wrapper.optimizer.lr)
    return (f"[train] auto_scale_lr: real batch {real} = {world_size} process(es) x {per_proc} images; base batch "
            f"{base}: lr {lr:g} x {real}/{base} = {lr * real / base:g}")


def _child_args(args: argparse.Namespace) -> list:
    out = ["--config", args.config, "--checkpoint", args.checkpoint, "--work-dir", args.work_dir,
           "--threads", str(args.threads), "--gpus", str(args.gpus)]
    return out + (["--procs", str(args.procs)] if args.procs else [])


def run(args: argparse.Namespace) -> int:
    pin_threads(args.threads)
    require_file(args.config, "config file")
    cfg = Config.fromfile(args.config)
    world_size = 1
    if args.launcher == "none":  # the job's own process: checks, work dir, then train here or re-launch
        check_run_inputs(cfg, args.config)
        line = pretrained_backbone_line(cfg)
        if line:
            print(line, flush=True)
        try:
            plan = plan_launch(args.gpus, args.procs)
        except ValueError as exc:
            raise ConfigError(f"{args.config}: {exc}") from None
        for warning in plan.warnings:
            print(f"[train] warning: {warning}", file=sys.stderr, flush=True)
        refuse_diverged(args.work_dir, args.config)
        resume_from = prepare_work_dir(args.work_dir, args.config)
        if resume_from is not None:
            print(f"[train] resuming from {resume_from}", flush=True)
        if plan.nproc > 1:
            argv = torchrun_argv(plan.nproc, _child_args(args))
            print(f"[train] {plan.nproc} processes ({plan.device}, {plan.backend}): {shlex.join(argv)}", flush=True)
            os.execve(argv[0], argv, child_env(plan))  # torchrun forwards SIGTERM (time limit) to the ranks
    else:  # a torchrun rank
        backend = init_distributed()
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        cfg.launcher = "pytorch"
        cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = backend
        if backend == "gloo":  # CPU modules: DDP without device_ids
            cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None)
    cfg.work_dir = str(Path(args.work_dir).resolve())
    cfg.resume, cfg.load_from = True, None  # mmengine resumes from work_dir/last_checkpoint if there is one
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="NonFiniteLossHook")]  # not a setting: always on
    allow_mmengine_checkpoint_globals()
    line = lr_scaling_line(cfg, world_size)
    if line and dist_rank() == 0:
        print(line, flush=True)
    start = time.time()
    memoize_pretty_text()
    run_dir = Path(args.checkpoint).parent  # results/runs/<run>/seed<k>
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except NonFiniteTrainingError as exc:
        error = NonFiniteTrainingError(f"{run_dir}: {exc}")
        if dist_rank() == 0:
            record_diverged(args.work_dir, args.config, str(error))
        raise error from None
    if dist_rank() != 0:
        return 0
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        error = NonFiniteTrainingError(f"{run_dir}: {len(bad)} weight tensor(s) hold NaN/inf after {runner.iter} "
                                       f"iterations (e.g. {bad[0]}); no checkpoint written")
        record_diverged(args.work_dir, args.config, str(error))
        raise error
    meta = dict(cfg.get("ld_repro", {}), iters=int(runner.iter), train_seconds=round(time.time() - start, 1),
                world_size=world_size)
    meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
    save_tensor_checkpoint(model, args.checkpoint, meta)
    cache = getattr(model, "teacher_cache", None)
    if cache is not None:
        print(f"[train] {cache.summary()}", flush=True)
    if TARGET_PATHS:
        print("[train] ATSS targets: " + ", ".join(f"{n} {path}" for path, n in sorted(TARGET_PATHS.items())),
              flush=True)
    loss = runner.message_hub.get_scalar("train/loss").current() if "train/loss" in runner.message_hub.log_scalars \
        else float("nan")
    print(f"[train] {args.config}: {runner.iter} iterations in {time.time() - start:.1f} s, last loss {loss:.4f} "
          f"-> {args.checkpoint}")
    return 0
