"""Resume after preemption / a time limit: a training killed after its first checkpoint continues from it.

Real mmengine at the tiny scale: checkpoints every 2 iterations, the process SIGKILLed (as SLURM does after
a time limit's grace period, or a preemption) after iteration 3; the same command again resumes at iteration
2 from work_dir/last_checkpoint (torch.load weights_only=True with mmengine's types allow-listed) and ends
at the schedule's last iteration.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

import pytest

from helpers import ROOT, resolved_config
from ld_core.commands.train import CONFIG_STAMP, prepare_work_dir
from ld_core.models.checkpoints import _history_buffer_statistic


KILL_HOOK = '''
import os, signal
from pathlib import Path
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillOnceAfterIter(Hook):
    """SIGKILL this process once, after iteration `at_iter` (a job killed by the scheduler)."""
    priority = "LOWEST"

    def __init__(self, at_iter, marker):
        self.at_iter, self.marker = at_iter, Path(marker)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
'''


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    from mmengine.config import Config

    (tmp_path / "ld_kill_hook.py").write_text(KILL_HOOK)
    path = resolved_config(tmp_path)
    cfg = Config.fromfile(str(path))
    total = cfg.train_cfg.max_iters
    assert total >= 4
    cfg.default_hooks.checkpoint.interval = 2
    cfg.custom_imports.imports = [*cfg.custom_imports.imports, "ld_kill_hook"]
    cfg.custom_hooks = [dict(type="KillOnceAfterIter", at_iter=3, marker=str(tmp_path / "killed"))]
    cfg.dump(str(path))
    work, ckpt = tmp_path / "work", tmp_path / "checkpoint.pth"
    cmd = [sys.executable, "-m", "ld_core", "train", "--config", str(path), "--checkpoint", str(ckpt),
           "--work-dir", str(work)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))

    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert first.returncode == -signal.SIGKILL, first.stdout[-2000:] + first.stderr[-2000:]
    assert not ckpt.exists(), "a killed training must not leave its final checkpoint"
    assert (work / "last_checkpoint").read_text().strip() == str(work / "iter_2.pth")

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    assert f"[train] resuming from {work / 'iter_2.pth'}" in log
    assert "resumed epoch: 0, iter: 2" in log
    assert f"Iter(train) [{total}/{total}]" in log and "Iter(train) [2/" not in log  # continued, not restarted
    import torch

    payload = torch.load(ckpt, weights_only=True)  # the rule's output: tensor-only
    assert payload["meta"]["iters"] == total


def test_mmengine_checkpoints_load_with_weights_only_and_the_allow_list(tmp_path):
    """In a fresh process (the allow-list is process-wide): without it torch refuses, with it the resumable
    checkpoint loads, message hub included."""
    from mmengine.logging import MessageHub
    import numpy as np
    import torch

    hub = MessageHub.get_instance("ld_resume_test")
    hub.update_scalar("train/loss", np.float64(0.5))
    hub.update_scalar("train/lr", 0.01)
    torch.save({"meta": {"iter": 2}, "message_hub": hub.state_dict(), "state_dict": {"w": torch.ones(2)}},
               tmp_path / "iter_2.pth")
    code = ("import sys, torch; from ld_core.commands.train import allow_mmengine_checkpoint_globals\n"
            "try:\n    torch.load(sys.argv[1], weights_only=True); print('loaded without allow-list')\n"
            "except Exception as exc:\n    print('refused')\n"
            "allow_mmengine_checkpoint_globals()\n"
            "ck = torch.load(sys.argv[1], weights_only=True)\n"
            "print('loaded', ck['message_hub']['log_scalars']['train/loss'].mean())\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "iter_2.pth")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["refused", "loaded 0.5"], out.stdout


def test_allowed_getattr_reaches_history_buffer_statistics_only():
    from mmengine.logging.history_buffer import HistoryBuffer

    assert _history_buffer_statistic(HistoryBuffer, "mean") is HistoryBuffer.mean
    for obj, name in ((os, "system"), (HistoryBuffer, "__init__"), (object(), "mean")):
        with pytest.raises(pickle.UnpicklingError):
            _history_buffer_statistic(obj, name)


def test_work_dir_of_another_config_is_not_resumed(tmp_path):
    config, work = tmp_path / "config.py", tmp_path / "work"
    config.write_text("a = 1\n")
    assert prepare_work_dir(work, config) is None and (work / CONFIG_STAMP).is_file()
    (work / "iter_2.pth").write_bytes(b"x")
    (work / "last_checkpoint").write_text(str(work / "iter_2.pth"))
    assert prepare_work_dir(work, config) == work / "iter_2.pth"  # same config: resume
    config.write_text("a = 2\n")  # re-resolved: another experiment
    assert prepare_work_dir(work, config) is None
    assert not (work / "iter_2.pth").exists() and not (work / "last_checkpoint").exists()
    (work / CONFIG_STAMP).unlink()  # checkpoints of unknown origin (a work dir from before resuming)
    (work / "epoch_1.pth").write_bytes(b"x")
    assert prepare_work_dir(work, config) is None and not (work / "epoch_1.pth").exists()
