"""Device/process choice of `ld_core train`, the torchrun re-launch, the logged lr scaling, and a real
2-process distributed training on the CPU (gloo) at the tiny scale."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ROOT, resolved_config
from ld_core.commands.launch import LaunchPlan, child_env, plan_launch, torchrun_argv


def test_no_gpu_requested_keeps_the_default_single_process():
    assert plan_launch(0, cuda_devices=8) == LaunchPlan(1, "auto")
    assert plan_launch(0, procs=1, cuda_devices=0) == LaunchPlan(1, "auto")


def test_gpus_give_one_process_per_gpu():
    plan = plan_launch(4, cuda_devices=8)
    assert (plan.nproc, plan.device, plan.backend, plan.warnings) == (4, "cuda", "nccl", [])
    assert plan_launch(1, cuda_devices=1) == LaunchPlan(1, "cuda")


def test_gpus_requested_without_cuda_fall_back_to_one_cpu_process_with_a_warning():
    plan = plan_launch(8, cuda_devices=0)
    assert (plan.nproc, plan.device) == (1, "cpu")
    assert "8 GPU(s) requested but torch.cuda is not available" in plan.warnings[0]
    fewer = plan_launch(4, cuda_devices=2)
    assert (fewer.nproc, fewer.device) == (2, "cuda") and "only 2 visible" in fewer.warnings[0]


def test_forced_processes_without_gpus_run_on_the_cpu_with_gloo():
    plan = plan_launch(0, procs=2, cuda_devices=4)
    assert (plan.nproc, plan.device, plan.backend) == (2, "cpu", "gloo")
    assert child_env(plan, {"PATH": "/bin"}) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": ""}
    assert child_env(plan_launch(2, cuda_devices=2), {"PATH": "/bin"}) == {"PATH": "/bin"}
    with pytest.raises(ValueError):
        plan_launch(-1)


def test_torchrun_argv():
    argv = torchrun_argv(4, ["--config", "c.py", "--gpus", "4"], python="/py")
    assert argv == ["/py", "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "4",
                    "-m", "ld_core", "train", "--config", "c.py", "--gpus", "4", "--launcher", "pytorch"]
    with pytest.raises(ValueError):
        torchrun_argv(1, [])


def test_paper_profile_logs_the_linearly_scaled_lr(tmp_path):
    """Paper scale: batch 2 per GPU, lr 0.01 for a real batch of 16 (mmengine auto_scale_lr, base 16)."""
    from mmengine.config import Config

    from ld_core.commands.train import lr_scaling_line

    data_root = tmp_path / "coco"
    data_root.mkdir()
    cfg = Config.fromfile(str(resolved_config(tmp_path, "paper", extra=["--data-root", str(data_root)])))
    assert lr_scaling_line(cfg, 8) == ("[train] auto_scale_lr: real batch 16 = 8 process(es) x 2 images; "
                                       "base batch 16: lr 0.01 x 16/16 = 0.01")
    assert lr_scaling_line(cfg, 1).endswith("lr 0.01 x 2/16 = 0.00125")
    cfg.auto_scale_lr.enable = False
    assert lr_scaling_line(cfg, 8) is None


def test_two_process_training_on_the_cpu_with_gloo(tmp_path):
    """`--procs 2` without GPUs: torchrun, 2 gloo ranks, DDP; the real batch (2 x 4) scales the lr by 8/16."""
    from mmengine.config import Config

    from ld_core.models.checkpoints import load_tensor_state_dict

    path = resolved_config(tmp_path)
    cfg = Config.fromfile(str(path))
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=16)
    cfg.dump(str(path))
    ckpt, log = tmp_path / "checkpoint.pth", tmp_path / "train.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") as handle:
        proc = subprocess.run([sys.executable, "-m", "ld_core", "train", "--config", str(path), "--checkpoint",
                               str(ckpt), "--work-dir", str(tmp_path / "work"), "--procs", "2"],
                              stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=300)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "[train] 2 processes (cpu, gloo): " in text and "torch.distributed.run --standalone" in text
    assert "Distributed training: True" in text and "'backend': 'gloo'" in text
    assert "[train] auto_scale_lr: real batch 8 = 2 process(es) x 4 images; base batch 16: lr 0.01 x 8/16 = 0.005" \
        in text
    assert "Scaling the original LR by 0.5" in text  # mmengine's own line agrees
    assert text.count("[train] auto_scale_lr") == 1 and text.count("iterations in") == 1  # rank 0 only
    max_iters = cfg.train_cfg.max_iters
    assert f"Iter(train) [{max_iters}/{max_iters}]" in text
    state = load_tensor_state_dict(ckpt)
    assert state and all(k.startswith(("backbone", "neck", "bbox_head")) for k in state)
    import torch

    meta = torch.load(ckpt, weights_only=True)["meta"]
    assert meta["world_size"] == 2 and meta["iters"] == max_iters
