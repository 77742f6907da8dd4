"""A training whose loss or gradient norm becomes non-finite fails with one line and leaves no checkpoint; a
checkpoint with NaN weights, or a split with nothing to score, is never reported as an AP."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import ROOT, resolved_config


def _runner(grad_norm: float, name: str):
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance(name)
    hub.update_scalar("train/grad_norm", grad_norm)
    return SimpleNamespace(message_hub=hub, iter=36, max_iters=90)


def test_hook_names_the_iteration_and_every_value_on_an_infinite_gradient_norm():
    """The bf16 case of issue 30: finite losses, an infinite gradient norm (clipping then makes the weights NaN)."""
    from ld_core.engine.nonfinite import NonFiniteLossHook, NonFiniteTrainingError

    hook = NonFiniteLossHook()
    outputs = dict(loss=torch.tensor(0.5), loss_cls=torch.tensor(0.25), loss_bbox=torch.tensor(0.25))
    hook.after_train_iter(_runner(0.11, "nonfinite-ok"), 36, outputs=outputs)  # finite: nothing happens
    with pytest.raises(NonFiniteTrainingError) as info:
        hook.after_train_iter(_runner(float("inf"), "nonfinite-inf"), 36, outputs=outputs)
    assert str(info.value) == ("loss became non-finite at iteration 37 of 90 (loss=0.5, loss_cls=0.25, "
                               "loss_bbox=0.25, grad_norm=inf); no checkpoint written")
    outputs["loss_cls"] = torch.tensor(float("nan"))
    with pytest.raises(NonFiniteTrainingError, match="loss_cls=nan"):
        hook.after_train_iter(_runner(1.0, "nonfinite-nan"), 36, outputs=outputs)


def test_a_diverging_training_fails_with_one_line_and_writes_no_checkpoint(tmp_path):
    """Real mmengine training at the tiny scale with a learning rate of 1e30: NaN at the second iteration."""
    from mmengine.config import Config

    path = resolved_config(tmp_path)
    cfg = Config.fromfile(str(path))
    cfg.optim_wrapper.optimizer.lr = 1e30
    cfg.default_hooks.checkpoint.interval = 1  # a checkpoint after every finite iteration, none after NaN
    cfg.dump(str(path))
    run_dir, work = path.parent, tmp_path / "work"
    cmd = [sys.executable, "-m", "ld_core", "train", "--config", str(path), "--checkpoint",
           str(run_dir / "checkpoint.pth"), "--work-dir", str(work)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert errors[0].startswith(f"error: {run_dir}: loss became non-finite at iteration 2 of ")
    assert "loss=nan" in errors[0] and "grad_norm=nan" in errors[0]
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.py"]  # no checkpoint.pth
    assert sorted(p.name for p in work.glob("iter_*.pth")) == ["iter_1.pth"]  # the last finite state only

    # a retry (Snakemake's train_retries) or rerun of the same config fails at once with the same line
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    retry_errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(retry_errors) == 1 and retry_errors[0].startswith(errors[0] + " (an earlier attempt with this config; "
                                                                 "not retried: delete ")
    assert "Checkpoints will be saved" in proc.stdout + proc.stderr  # the first attempt trained ...
    assert "Checkpoints will be saved" not in again.stdout + again.stderr  # ... the retry did not start
    # a changed config trains again
    path.write_text(path.read_text() + "\n# changed\n")
    changed = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert changed.returncode == 2
    assert [line for line in changed.stderr.splitlines() if line.startswith("error:")] == errors


def _student_checkpoint(config: Path, out: Path, poison: bool) -> Path:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import ld_core.models  # noqa: F401
    from ld_core.student import student_only
    from ld_core.models.checkpoints import save_tensor_checkpoint

    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(Config(student_only(Config.fromfile(str(config)).to_dict())).model)
    if poison:
        with torch.no_grad():
            model.neck.fpn_convs[4].conv.weight[0, 0, 0, 0] = float("nan")
    return save_tensor_checkpoint(model, out, {"run": "gfl_r18"})


def test_evaluation_refuses_a_checkpoint_with_nan_weights(tmp_path):
    config = resolved_config(tmp_path)
    ckpt = _student_checkpoint(config, config.parent / "checkpoint.pth", poison=True)
    out = config.parent / "metrics.json"
    # its own process: mmengine keeps one visualizer per process, bound to an earlier evaluation's folder
    proc = subprocess.run([sys.executable, "-m", "ld_core", "evaluate", "--config", str(config), "--checkpoint",
                           str(ckpt), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert err == (f"error: {ckpt}: 1 weight tensor(s) hold NaN/inf (e.g. neck.fpn_convs.4.conv.weight): the "
                   "training diverged; retrain it (a NaN model is not scored)")
    assert not out.exists()


def test_evaluation_with_nothing_to_score_is_an_error_not_a_null_metrics_file():
    """pycocotools gives -1 everywhere when no ground-truth box counts (the dataset check refuses such a split
    first; this is the evaluation's own guard): an error naming the file, not a metrics file of nulls."""
    from ld_core.evaluation.metrics import COCO_KEYS, check_scored, coco_metrics
    from ld_core.errors import DataError

    nothing = coco_metrics({f"coco/{key}": -1.0 for key in COCO_KEYS.values()})
    assert set(nothing.values()) == {None}
    with pytest.raises(DataError) as info:
        check_scored(nothing, "val.json", {"run": "gfl_r18", "seed": 0})
    assert str(info.value) == ("val.json: no ground-truth box to score run 'gfl_r18' seed 0 against (every COCO "
                               "metric is -1); no metrics file written")
    some = coco_metrics({f"coco/{key}": (-1.0 if key == "bbox_mAP_l" else 0.0) for key in COCO_KEYS.values()})
    check_scored(some, "val.json", {"run": "gfl_r18", "seed": 0})  # no large objects: APl alone is None
    assert some["AP"] == 0.0 and some["APl"] is None
