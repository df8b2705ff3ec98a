"""Validation during training (``train.val_interval``): every N epochs, and after the last one,
the EMA weights are scored on the val split; the main metric goes into ``metrics.csv``
(``val_<metric>``) and the best epoch's weights into ``best.pt``.

The engine must not import :mod:`rtmdet.evaluation` (they are sibling layers), so the scoring
function is handed in by the command that builds the trainer (:mod:`rtmdet.commands.train`).
Validation draws no random numbers from the training streams (the torch RNG is restored after
it), so a run with validation trains exactly the same weights as one without.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

# model -> (name of the main metric, metrics); higher is better for the main metric
ValidateFn = Callable[[nn.Module], tuple[str, dict[str, float]]]


@dataclass
class PeriodicValidation:
    validate: ValidateFn
    interval: int
    metric: str | None = None
    best: float | None = None
    best_epoch: int | None = None

    def due(self, epoch: int, epochs: int) -> bool:
        """After 1-based ``epoch``: every ``interval`` epochs and after the last one."""
        return self.interval > 0 and (epoch % self.interval == 0 or epoch == epochs)

    def run(self, model: nn.Module, epoch: int) -> tuple[dict[str, float], bool]:
        """Score ``model``; returns the metrics and whether this epoch is the new best."""
        was_training = model.training
        rng = torch.get_rng_state()
        try:
            self.metric, metrics = self.validate(model)
        finally:
            torch.set_rng_state(rng)
            model.train(was_training)
        value = float(metrics.get(self.metric, float("nan")))
        if value != value:                   # no labels to score against (e.g. DOTA test split)
            log.warning("epoch %d validation: no %s (unlabelled val split?)", epoch, self.metric)
            return metrics, False
        improved = self.best is None or value > self.best
        if improved:
            self.best, self.best_epoch = value, epoch
        log.info("epoch %d validation: %s %.4f (best %.4f at epoch %d)", epoch, self.metric,
                 value, self.best, self.best_epoch)
        return metrics, improved

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.metric, self.best, self.best_epoch = state["metric"], state["best"], state["best_epoch"]
