"""The embedded profile's `foreach: true` (AdamW and gradient clipping) is a speed setting only: the optim wrapper
built from the profile updates the weights bit for bit as the per-parameter loop does (CPU)."""
from __future__ import annotations

import copy

import torch
from mmengine.optim import build_optim_wrapper

from helpers import ROOT
from ld_core.config.builder import _optim_wrapper
from ld_core.config.scale import load_scale


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.GroupNorm(4, 16), torch.nn.ReLU(),
                               torch.nn.Conv2d(16, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(4))


def _train(wrapper_cfg: dict, steps: int = 6) -> list:
    net = _net()
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    net(x)  # materialise the lazy layer
    wrapper = build_optim_wrapper(net, copy.deepcopy(wrapper_cfg))
    for step in range(steps):
        loss = (net(x) * (10.0 ** step)).square().mean()  # growing gradients: later steps are clipped
        wrapper.update_params(loss)
    return [p.detach().clone() for p in net.parameters()]


def test_embedded_foreach_updates_equal_the_per_parameter_loop():
    cfg = _optim_wrapper(load_scale(ROOT / "configs" / "scales" / "embedded.yaml")["train"])
    assert cfg["optimizer"]["foreach"] is True and cfg["clip_grad"]["foreach"] is True
    loop = copy.deepcopy(cfg)
    loop["optimizer"]["foreach"] = False
    loop["clip_grad"]["foreach"] = False
    fused, plain = _train(cfg), _train(loop)
    assert all(torch.equal(a, b) for a, b in zip(fused, plain))
    assert not torch.equal(fused[0], _net()[0].weight)  # the weights did move
