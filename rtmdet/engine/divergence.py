"""The divergence guard: a non-finite loss or gradient norm never reaches the weights.

Why: with a learning rate a few orders too high the loss climbs to ~1e19 and turns NaN within a
few iterations; the optimiser then writes NaN into every weight, training runs on to the end,
exits 0 and writes a ``final.pt`` whose evaluation is AP 0.0 — an ordinary-looking table row.
The guard checks each step *before* the optimiser applies it:

* ``train.nan_policy: stop`` (default): :class:`DivergenceError` naming the iteration, what was
  not finite and the last good checkpoint; the CLI exits 3, the MLflow run ends FAILED.
* ``train.nan_policy: skip_step``: the step is dropped (no optimiser or EMA update, BatchNorm
  statistics restored to their values before the step) and counted; more than
  ``train.max_skipped_steps`` skipped steps stop training as above.

The loss is checked before ``backward`` on one process; under DDP each rank's loss differs, so
only the gradient norm (identical on all ranks after the all-reduce) decides, or the ranks
would disagree and hang. Under AMP an infinite gradient is the GradScaler's business (it skips
the step and lowers the scale), so only the loss is checked there.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtmdet.utils.errors import DivergenceError

log = logging.getLogger(__name__)


def grad_norm(model: nn.Module) -> torch.Tensor:
    """Total L2 norm of the gradients (read only: the gradients are not touched)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def non_finite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of floating tensors in a (nested) state dict holding NaN or inf."""
    out: list[str] = []
    for k, v in state.items():
        if isinstance(v, dict):
            out += [f"{k}.{n}" for n in non_finite_tensors(v)]
        elif isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all():
            out.append(k)
    return out


class DivergenceGuard:
    """Applies ``policy`` ("stop" or "skip_step") to non-finite steps of one training."""

    def __init__(self, policy: str, max_skipped: int, work_dir: Path) -> None:
        if policy not in ("stop", "skip_step"):
            raise ValueError(f"nan_policy must be 'stop' or 'skip_step', got {policy!r}")
        self.policy, self.max_skipped, self.work_dir = policy, max_skipped, work_dir
        self.skipped = 0
        self._buffers: dict[str, torch.Tensor] | None = None

    def before_forward(self, model: nn.Module) -> None:
        """``skip_step`` only: remember the BatchNorm statistics a bad forward would poison."""
        if self.policy == "skip_step":
            self._buffers = {k: b.detach().clone() for k, b in model.named_buffers()}

    def step_ok(self, what: str, value: float | torch.Tensor, iteration: int,
                model: nn.Module) -> bool:
        """True when ``value`` (the loss or gradient norm of 1-based ``iteration``) is finite;
        otherwise False (skip this step) or :class:`DivergenceError` (stop)."""
        value = float(value.detach() if isinstance(value, torch.Tensor) else value)
        if math.isfinite(value):
            return True
        if self.policy == "skip_step" and self.skipped < self.max_skipped:
            self.skipped += 1
            if self._buffers is not None:
                with torch.no_grad():
                    for k, b in model.named_buffers():
                        b.copy_(self._buffers[k])
            log.warning("iteration %d: %s is %s, step skipped (%d of at most %d)", iteration,
                        what, value, self.skipped, self.max_skipped)
            return False
        raise self.error(f"{what} is {value}", iteration)

    def error(self, what: str, iteration: int) -> DivergenceError:
        last = self.work_dir / "last.pt"
        good = f"last good checkpoint: {last}" if last.exists() else "no checkpoint was saved"
        skipped = f" after {self.skipped} skipped steps" if self.skipped else ""
        return DivergenceError(
            f"training diverged at iteration {iteration}: {what}{skipped}; {good}; nothing "
            "else written (lower train.base_lr, set train.grad_clip, or "
            "train.nan_policy=skip_step)")
