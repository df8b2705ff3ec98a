"""Optimiser with RTMDet's parameter groups, and the per-iteration learning-rate schedule (SPEC §8).

Weight decay on BatchNorm scales and biases only shrinks them towards zero for no regularising
benefit (they do not set the function's capacity), and the paper's ablation shows a gain from
excluding them — so by default they go into a group with ``weight_decay = 0``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

NORM_TYPES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, weight_decay: float, norm_decay: bool = False,
                 bias_decay: bool = False) -> list[dict]:
    """Two groups, ``decay`` and ``no_decay``, each tensor listed once (the shared head convs
    appear under three module paths but are one tensor). A norm layer's bias follows
    ``norm_decay``; every other ``bias`` (convs, the channel-attention 1×1 conv) ``bias_decay``."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    decay_names: list[str] = []
    no_decay_names: list[str] = []
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, NORM_TYPES):
                use_decay = norm_decay
            elif p_name == "bias":
                use_decay = bias_decay
            else:
                use_decay = True
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            (decay if use_decay else no_decay).append(p)
            (decay_names if use_decay else no_decay_names).append(full)
    groups = [{"params": decay, "weight_decay": weight_decay, "group": "decay",
               "param_names": decay_names},
              {"params": no_decay, "weight_decay": 0.0, "group": "no_decay",
               "param_names": no_decay_names}]
    return [g for g in groups if g["params"]]


def scaled_lr(base_lr: float, base_batch_size: int, total_batch_size: int) -> float:
    """Linear scaling rule: the recipe's lr is for ``base_batch_size`` images per step."""
    if total_batch_size < 1 or base_batch_size < 1:
        raise ValueError(f"batch sizes must be >= 1 (got total {total_batch_size}, "
                         f"base {base_batch_size})")
    return base_lr * total_batch_size / base_batch_size


def build_optimizer(model: nn.Module, train_cfg, total_batch_size: int) -> torch.optim.Optimizer:
    """AdamW or SGD over :func:`param_groups`, lr scaled to ``total_batch_size`` (all processes)."""
    lr = scaled_lr(train_cfg.base_lr, train_cfg.base_batch_size, total_batch_size)
    groups = param_groups(model, train_cfg.weight_decay, train_cfg.norm_decay,
                          train_cfg.bias_decay)
    # The fused kernels update every tensor in one pass: AdamW 15.6 → 3.5 ms per step for tiny
    # on 2 CPU threads (the per-tensor loop is ~4 % of a 320² training step). Same maths,
    # different summation order, so results match the loop to float rounding, not bit for bit.
    fused = bool(train_cfg.fused_optimizer) or None
    if train_cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(train_cfg.betas), fused=fused)
    if train_cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=train_cfg.momentum, fused=fused)
    raise ValueError(f"train.optimizer: unknown optimizer {train_cfg.optimizer!r}")


class LRSchedule:
    """Per-iteration lr factor = warm-up × main schedule, applied to each group's base lr.

    * warm-up: ``ratio + (1 − ratio)·min(t, W)/W`` — linear from ``warmup_ratio`` at t = 0 to
      1 at t = ``warmup_iters``;
    * ``flat_cosine``: 1 until ``flat_epochs·iters_per_epoch``, then a per-iteration cosine to
      ``min_lr_ratio`` at the last iteration of ``epochs``; ``cosine``: the same from t = 0.

    A flat phase lets the lr stay high while heavy Mosaic/MixUp keeps the task hard; the decay is
    saved for the end. Call :meth:`step` once at the start of every iteration (before the
    optimiser step): it sets the lr for that iteration. The lr after construction is that of
    iteration 0.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, iters_per_epoch: int, epochs: int,
                 kind: str = "flat_cosine", warmup_iters: int = 1000, warmup_ratio: float = 1e-5,
                 flat_epochs: int = 150, min_lr_ratio: float = 0.05) -> None:
        if kind not in ("flat_cosine", "cosine"):
            raise ValueError(f"train.scheduler: unknown schedule {kind!r}")
        if iters_per_epoch < 1 or epochs < 1:
            raise ValueError(f"iters_per_epoch and epochs must be >= 1 "
                             f"(got {iters_per_epoch}, {epochs})")
        self.optimizer = optimizer
        self.total_iters = iters_per_epoch * epochs
        self.flat_iters = 0 if kind == "cosine" else min(flat_epochs * iters_per_epoch,
                                                          self.total_iters)
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.min_lr_ratio = min_lr_ratio
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.iter = 0          # the next iteration that step() prepares
        self._apply(0)

    @classmethod
    def from_config(cls, optimizer: torch.optim.Optimizer, train_cfg, iters_per_epoch: int
                    ) -> "LRSchedule":
        return cls(optimizer, iters_per_epoch, train_cfg.epochs, train_cfg.scheduler,
                   train_cfg.warmup_iters, train_cfg.warmup_ratio, train_cfg.flat_epochs,
                   train_cfg.min_lr_ratio)

    def factor(self, t: int) -> float:
        warm = 1.0
        if self.warmup_iters > 0:
            warm = self.warmup_ratio + (1 - self.warmup_ratio) * min(t, self.warmup_iters) \
                / self.warmup_iters
        span = self.total_iters - self.flat_iters
        if t < self.flat_iters or span <= 0:
            return warm
        progress = min(t - self.flat_iters, span) / span
        main = self.min_lr_ratio + (1 - self.min_lr_ratio) * (1 + math.cos(math.pi * progress)) / 2
        return warm * main

    def _apply(self, t: int) -> None:
        f = self.factor(t)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self) -> None:
        self._apply(self.iter)
        self.iter += 1

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"iter": self.iter, "base_lrs": list(self.base_lrs),
                "total_iters": self.total_iters, "flat_iters": self.flat_iters}

    def load_state_dict(self, state: dict) -> None:
        """Restore the position; the schedule shape comes from the config, so a checkpoint from
        a different schedule is refused rather than silently continued."""
        if (state["total_iters"], state["flat_iters"]) != (self.total_iters, self.flat_iters):
            raise ValueError(f"schedule mismatch: checkpoint has {state['total_iters']} iters "
                             f"(flat {state['flat_iters']}), config {self.total_iters} "
                             f"(flat {self.flat_iters})")
        self.iter = int(state["iter"])
        self.base_lrs = list(state["base_lrs"])
        self._apply(max(self.iter - 1, 0))
