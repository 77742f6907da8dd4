"""The rehearsal's training loop: mmengine's EpochBasedTrainLoop, stopped after ``iters`` iterations in all.

Used only by ``make rehearse`` (the pipeline config's ``rehearsal.train_iters``): the resolved config keeps the
paper's epochs, milestones, warm-up and everything else; only the loop type and this cap differ. The last
(partial) epoch still ends normally, so the checkpoint hook and the train command's final checkpoint run as
in a full training.
"""
from __future__ import annotations

from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop


@LOOPS.register_module()
class CappedEpochBasedTrainLoop(EpochBasedTrainLoop):
    """EpochBasedTrainLoop that stops after ``iters`` training iterations (the rehearsal only)."""

    def __init__(self, runner, dataloader, max_epochs: int, iters: int, **kwargs):
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        self.iters_cap = int(iters)

    def run_epoch(self) -> None:
        self.runner.call_hook("before_train_epoch")
        self.runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
            if self._iter >= self.iters_cap:
                break
        self.runner.call_hook("after_train_epoch")
        self._epoch += 1
        if self._iter >= self.iters_cap:
            self.stop_training = True
