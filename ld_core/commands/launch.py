"""How `ld_core train` runs: the device and process count from the job's GPUs, and the torchrun re-launch.

The train rule passes the job's GPU count (``--gpus {resources.gpu}``, SLURM ``--gpus``). Then:

- ``--gpus 0`` (the embedded default): one process on mmengine's default device, exactly as before
  (CPU on a machine without CUDA);
- ``--gpus 1``: one process on the GPU;
- ``--gpus N > 1``: ``ld_core train`` re-executes itself under ``python -m torch.distributed.run
  --standalone --nproc_per_node N`` with ``--launcher pytorch``; each process drives one GPU (NCCL) and
  mmengine wraps the model in DistributedDataParallel. The batch per GPU stays the config's, so the real
  batch is N x that, and ``auto_scale_lr`` (base batch 16) scales the learning rate accordingly.
- GPUs requested but ``torch.cuda`` unavailable (CPU-only torch, no GPU visible: e.g. a CPU node, or the
  SLURM stub test): a warning, and one process on the CPU. Fewer visible GPUs than requested: a warning,
  and one process per visible GPU.
- ``--procs P`` forces P processes; without GPUs they run on the CPU with the gloo backend (to exercise
  the distributed path on a machine without GPUs).

Nothing here imports torch at module level: the plan and the torchrun command line are worked out without it.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence


@dataclass
class LaunchPlan:
    nproc: int                   # training processes (1: no re-launch)
    device: str                  # "auto" (mmengine's choice), "cuda" or "cpu"
    warnings: list = field(default_factory=list)

    @property
    def backend(self) -> str:
        """torch.distributed backend of a multi-process run."""
        return "nccl" if self.device == "cuda" else "gloo"


def cuda_device_count() -> int:
    """Visible CUDA devices (0 when torch has no CUDA or none is visible)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_launch(gpus: int, procs: Optional[int] = None, cuda_devices: Optional[int] = None) -> LaunchPlan:
    """Processes and device of a training job granted ``gpus`` GPUs (``cuda_devices``: visible devices)."""
    if gpus < 0 or (procs is not None and procs < 1):
        raise ValueError(f"invalid launch request: gpus={gpus}, procs={procs}")
    if gpus == 0:
        if procs is None or procs == 1:
            return LaunchPlan(1, "auto")
        return LaunchPlan(procs, "cpu")
    visible = cuda_device_count() if cuda_devices is None else cuda_devices
    if visible == 0:
        return LaunchPlan(procs or 1, "cpu", [
            f"{gpus} GPU(s) requested but torch.cuda is not available (CPU-only torch or no GPU visible): "
            f"training on the CPU in {procs or 1} process(es)"])
    warnings = []
    usable = gpus
    if visible < gpus:
        warnings.append(f"{gpus} GPU(s) requested but only {visible} visible: training on {visible}")
        usable = visible
    nproc = procs or usable
    if nproc > usable:
        warnings.append(f"{nproc} processes on {usable} GPU(s): processes share GPUs")
    return LaunchPlan(nproc, "cuda", warnings)


def torchrun_argv(nproc: int, train_args: Sequence[str], python: str = sys.executable) -> list:
    """argv that re-runs ``python -m ld_core train <train_args>`` as ``nproc`` processes on this node.

    ``--standalone`` gives each job its own rendezvous on a free local port (two jobs on one node do
    not collide); ``--launcher pytorch`` tells the children that they are distributed ranks.
    """
    if nproc < 2:
        raise ValueError(f"torchrun is for 2 or more processes, got {nproc}")
    return [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", str(nproc),
            "-m", "ld_core", "train", *train_args, "--launcher", "pytorch"]


def child_env(plan: LaunchPlan, environ: Optional[dict] = None) -> dict:
    """Environment of the torchrun processes: GPUs hidden for a CPU plan."""
    env = dict(os.environ if environ is None else environ)
    if plan.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def dist_rank() -> int:
    """Global rank of this process (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def init_distributed(backend: Optional[str] = None) -> str:
    """Join the torchrun process group (``--launcher pytorch`` children) before mmengine's Runner is built.

    mmengine's own ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` unconditionally, which fails
    on a CPU; initialising the group here (NCCL + the local GPU with CUDA, gloo without) makes the Runner
    skip its own initialisation. Returns the backend.
    """
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return backend
