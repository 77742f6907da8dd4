"""A training whose loss or gradient norm becomes NaN or infinite stops at that iteration, with one line.

mmdet's ``CheckInvalidLossHook`` only asserts on the total loss every ``interval`` iterations; after one
non-finite gradient the weights are NaN for good (gradient clipping multiplies by NaN), and such a model
would later be scored "AP 0". :class:`NonFiniteLossHook` checks every loss term and mmengine's
``train/grad_norm`` after each iteration, before the logger and checkpoint hooks of that iteration run.
"""
from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..errors import LDError


class NonFiniteTrainingError(LDError):
    """A loss or the gradient norm became NaN or infinite: the run diverged and its weights are unusable."""


def _scalar(value):
    """A float of a scalar tensor or number; None for anything else."""
    if hasattr(value, "numel"):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def nonfinite_tensors(state: dict) -> list:
    """Names of the floating-point tensors of a state dict holding NaN or infinite values."""
    import torch

    return [name for name, t in state.items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteTrainingError` when a loss term or the gradient norm of an iteration is not finite."""

    priority = "VERY_HIGH"  # before LoggerHook and CheckpointHook: a diverged iteration is never saved

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        values = {}
        for key, value in (outputs or {}).items():
            number = _scalar(value)
            if number is not None:
                values[key] = number
        grad_norm = runner.message_hub.log_scalars.get("train/grad_norm")
        if grad_norm is not None:  # set by the optim wrapper's clip_grad at every step
            values["grad_norm"] = float(grad_norm.current())
        if all(math.isfinite(v) for v in values.values()):
            return
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        raise NonFiniteTrainingError(f"loss became non-finite at iteration {runner.iter + 1} of {runner.max_iters} "
                                     f"({shown}); no checkpoint written")
