"""Weight files written by the tests themselves (no download): released-teacher checkpoints in mmdetection's
model-zoo formats and ImageNet backbones in torchvision's, all with random weights."""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from pathlib import Path

import torch

from helpers import ROOT


def run_model_cfg(run_id: str, scale_name: str = "tiny", results="results", **kwargs) -> dict:
    """The model config of a run as the pipeline resolves it (build_run_config), at its teacher seed."""
    from ld_core.config.builder import dataset_classes
    from ld_core.config.builder import build_run_config
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale

    matrix = load_matrix(ROOT / "configs" / "experiments.yaml")
    scale = load_scale(ROOT / "configs" / "scales" / f"{scale_name}.yaml")
    run = matrix.run(run_id)
    seed = run.seed if run.seed is not None else 1000
    return build_run_config(run, seed, scale, results_dir=results, classes=dataset_classes(scale), **kwargs)


def paper_backbone(run_id: str, tmp_path: Path) -> dict:
    """The paper-scale backbone config of a run (full width), as the pipeline resolves it."""
    return run_model_cfg(run_id, "paper", data_root=str(tmp_path), voc_root=str(tmp_path),
                         pretrained_dir=str(tmp_path))["model"]["backbone"]


def random_state(model_cfg: dict, seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    from ld_core.models.fitting import build_model

    torch.manual_seed(seed)
    model = build_model(copy.deepcopy(model_cfg), device="cpu")
    with torch.no_grad():  # non-trivial BN statistics, so that a copy is told from a fresh model
        for name, value in model.state_dict().items():
            if not value.is_floating_point() or "integral" in name:
                continue
            random = torch.rand_like(value) + 0.5 if name.endswith("running_var") else torch.randn_like(value) * 0.05
            value.copy_(random)
    return OrderedDict(model.state_dict())


def message_hub_state():
    """A real mmengine MessageHub state dict: HistoryBuffers of numpy values, runtime info, resumed keys."""
    import numpy as np
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance(f"ld_weights_test_{time.monotonic_ns()}")
    for step in range(3):
        hub.update_scalar("train/loss", np.float64(1.0 / (step + 1)))
        hub.update_scalar("train/lr", 0.01)
        hub.update_scalar("train/grad_norm", np.float32(3.5))
    hub.update_info("iter", 3)
    hub.update_info("eta", np.float64(12.5))
    hub.update_info("last_ckpt", "work/iter_3.pth")
    return hub.state_dict()


def save_mmengine(path: Path, state, classes=("a", "b")) -> Path:
    """What mmengine's Runner.save_checkpoint / CheckpointHook writes (mmengine 0.10.7, checked by writing one)."""
    from collections import Counter

    meta = dict(epoch=24, iter=175920, cfg="model = dict(type='GFL')\n", seed=1000, experiment_name="gfl_ms2x",
                time="20240101_000000", mmengine_version="0.10.7",
                dataset_meta=dict(classes=tuple(classes), palette=[(220, 20, 60)] * len(classes)))
    sched = [dict(start_factor=0.001, end_factor=1.0, total_iters=499, param_name="lr", begin=0, end=500,
                  by_epoch=False, base_values=[0.01], last_step=499, _global_step=175920, verbose=False,
                  _last_value=[0.01]),
             dict(milestones=Counter({16: 1, 22: 1}), gamma=0.1, param_name="lr", begin=0, end=24, by_epoch=True,
                  base_values=[0.01], last_step=23, _global_step=24, verbose=False, _last_value=[0.0001])]
    optim = dict(state={0: dict(momentum_buffer=torch.zeros(2))},
                 param_groups=[dict(lr=0.0001, momentum=0.9, dampening=0, weight_decay=0.0001, nesterov=False,
                                    maximize=False, foreach=None, differentiable=False, fused=None,
                                    initial_lr=0.01, params=[0])])
    torch.save(dict(meta=meta, state_dict=state, message_hub=message_hub_state(), optimizer=optim,
                    param_schedulers=sched), path)
    return path


def save_mmcv1(path: Path, state, classes=("a", "b"), legacy: bool = True) -> Path:
    """An mmcv 1.x / mmdet 2.x model-zoo file: {'meta': {...}, 'state_dict': OrderedDict, 'optimizer': ...}, in
    torch's pre-1.6 (non-zip) serialisation like the 2020 releases."""
    meta = dict(mmdet_version="2.25.0", CLASSES=tuple(classes), mmcv_version="1.7.0", epoch=24, iter=175920,
                time="Mon Jun 29 20:01:26 2020", config="model = dict(type='GFL')\n",
                hook_msgs=dict(last_ckpt="work_dirs/epoch_24.pth"))
    optim = dict(state={}, param_groups=[dict(lr=0.0001, momentum=0.9, dampening=0, weight_decay=0.0001,
                                              nesterov=False, initial_lr=0.01, params=[0, 1])])
    torch.save(dict(meta=meta, state_dict=OrderedDict(state), optimizer=optim), path,
               _use_new_zipfile_serialization=not legacy)
    return path


def torchvision_backbone(path: Path, backbone_cfg: dict, *, fc: bool = True, drop=(), seed: int = 0) -> Path:
    """An ImageNet file in torchvision's format (bare state dict, fc included) for an mmdet ResNet config."""
    cfg = {k: v for k, v in backbone_cfg.items() if k != "init_cfg"}
    state = random_state(cfg, seed)
    state = OrderedDict((k, v) for k, v in state.items() if not any(k.startswith(d) for d in drop))
    if fc:
        width = [v for k, v in state.items() if k.endswith("bn3.weight") or k.endswith("bn2.weight")][-1].numel()
        state["fc.weight"], state["fc.bias"] = torch.randn(1000, width) * 0.01, torch.zeros(1000)
    torch.save(state, path)
    return path
