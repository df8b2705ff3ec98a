"""Exponential moving average of weights and float buffers (SPEC §8).

The momentum starts near 1 and decays to ``momentum`` with time constant ``warmup`` iterations:
``m_t = (1 − momentum)·exp(−(1 + t)/warmup) + momentum``, ``ema ← (1 − m_t)·ema + m_t·param``.
Early on the EMA therefore tracks the fast-changing weights closely instead of averaging in the
random initialisation; later it averages over ~1/momentum = 5000 iterations.

Each tensor is averaged once per update. The official code steps the shared head convs once per
level (three times per iteration) — a quirk of iterating over per-level state-dict keys, not a
design choice; this is the documented difference. mmengine also copies the weights verbatim on
its very first update instead of using m_0 ≈ 0.9995; the SPEC formula is used from t = 0 here.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under DistributedDataParallel / DataParallel."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) \
        else model


class ModelEMA:
    def __init__(self, model: nn.Module, momentum: float = 2e-4, warmup: float = 2000.0) -> None:
        if not 0 < momentum <= 1:
            raise ValueError(f"EMA momentum must be in (0, 1], got {momentum}")
        self.module = copy.deepcopy(unwrap(model)).eval()
        self.module.requires_grad_(False)
        self.momentum = momentum
        self.warmup = warmup
        self.updates = 0

    def momentum_at(self, t: int) -> float:
        if self.warmup <= 0:
            return self.momentum
        return (1 - self.momentum) * math.exp(-(1 + t) / self.warmup) + self.momentum

    @staticmethod
    def _pairs(src: nn.Module, dst: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # named_parameters/named_buffers yield each tensor once, so shared convs pair once.
        src_t = dict(src.named_parameters())
        src_t.update(src.named_buffers())
        dst_t = dict(dst.named_parameters())
        dst_t.update(dst.named_buffers())
        if src_t.keys() != dst_t.keys():
            missing = sorted(src_t.keys() ^ dst_t.keys())[:3]
            raise ValueError(f"EMA and model differ in tensors, e.g. {missing}")
        return [(dst_t[k], src_t[k]) for k in dst_t]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights in; call after every optimiser step."""
        m = self.momentum_at(self.updates)
        floats, src = [], []
        for ema_t, t in self._pairs(unwrap(model), self.module):
            if ema_t.dtype.is_floating_point:
                floats.append(ema_t)
                src.append(t if t.dtype == ema_t.dtype else t.to(ema_t.dtype))  # no_grad
            else:
                ema_t.copy_(t)
        # One multi-tensor kernel instead of two ops per tensor (~470 tensors for tiny):
        # ema ← ema + m·(t − ema) = (1 − m)·ema + m·t; 7.1 → 4.8 ms per tiny step, 2 threads.
        torch._foreach_lerp_(floats, src, m)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
