"""Parameter and FLOP counts (``rtmdet info``).

FLOPs follow the paper's (OpenMMLab/fvcore) convention so our numbers sit next to the paper's:
one multiply-add = one FLOP. Counted: conv multiply-adds (bias excluded), 2 per element of an
inference-mode BatchNorm (scale + shift), 1 per input element of a global average pool, 1 per
output element of an upsample. Not counted: activations, max-pools, additions, concatenations,
post-processing. ``torch.utils.flop_counter`` reports about twice these numbers (2 per MAC).
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtmdet.config import load_config
from rtmdet.models.blocks import ChannelAttention
from rtmdet.models.build import build_model

CONVENTION = ("FLOPs = multiply-adds (1 MAC = 1 FLOP, OpenMMLab convention): conv MACs "
              "+ 2/elem BatchNorm + 1/elem global-avg-pool input + 1/elem upsample output; "
              "forward only, no post-processing")

# Official counts (SPEC §1/§9/§10): unique parameter tensors and FLOPs at 640x640.
OFFICIAL: dict[str, dict[str, float]] = {
    "rtmdet-tiny": {"params": 4_896_168, "flops": 8.089e9},
    "rtmdet-s": {"params": 8_886_924, "flops": 14.835e9},
    "rtmdet-m": {"params": 24_709_188, "flops": 39.205e9},
    "rtmdet-l": {"params": 52_315_804, "flops": 80.121e9},
    "rtmdet-x": {"params": 94_855_572, "flops": 141.514e9},
    "rtmdet-ins-tiny": {"params": 5_638_187, "flops": 11.937e9},
    "rtmdet-ins-s": {"params": 10_183_311, "flops": 21.607e9},
    "rtmdet-ins-m": {"params": 27_575_111},
    "rtmdet-ins-l": {"params": 57_365_663},
    "rtmdet-ins-x": {"params": 102_703_767},
    "rtmdet-r-tiny": {"params": 4_877_544},
    "rtmdet-r-s": {"params": 8_862_156},
    "rtmdet-r-m": {"params": 24_672_132},
    "rtmdet-r-l": {"params": 52_266_460},
}
PARTS = ("backbone", "neck", "head")
PAPER_DIR = Path(__file__).resolve().parents[2] / "paper"


def paper_sizes() -> dict[str, dict[str, float]]:
    """Params (M) and FLOPs (G) of the paper's main table, keyed by preset name."""
    path = PAPER_DIR / "table2_coco_detection.csv"
    if not path.exists():
        return {}
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["model"].startswith("RTMDet-")]
    return {r["model"].lower(): {"params_M": float(r["params_M_repo"]),
                                 "flops_G": float(r["flops_G_repo"])} for r in rows}


def _unique_numel(params: Iterable[nn.Parameter], seen: set[int]) -> int:
    total = 0
    for p in params:
        if id(p) not in seen:  # shared head convs count once
            seen.add(id(p))
            total += p.numel()
    return total


def count_params(model: nn.Module) -> dict[str, int]:
    seen: set[int] = set()
    out = {part: _unique_numel(getattr(model, part).parameters(), seen)
           for part in PARTS if hasattr(model, part)}
    out["total"] = sum(out.values()) + _unique_numel(model.parameters(), seen)
    return out


def _module_flops(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: Any) -> int:
    if isinstance(mod, nn.Conv2d):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        return out.numel() * (mod.in_channels // mod.groups) * k
    if isinstance(mod, nn.BatchNorm2d):
        return 2 * out.numel()
    if isinstance(mod, ChannelAttention):
        return inp[0].numel()
    if isinstance(mod, nn.Upsample):
        return out.numel()
    return 0


@torch.no_grad()
def count_flops(model: nn.Module, size: int | tuple[int, int] = 640) -> dict[str, int]:
    """FLOPs of one forward pass of a single (size × size) image, per part and total."""
    h, w = (size, size) if isinstance(size, int) else size
    counts = {part: 0 for part in PARTS}
    counts["other"] = 0
    handles = []
    for name, mod in model.named_modules():
        part = name.split(".", 1)[0] if name.split(".", 1)[0] in PARTS else "other"

        def hook(m, i, o, part=part):
            counts[part] += _module_flops(m, i, o)
        handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        model.forward_raw(torch.zeros(1, 3, h, w, dtype=p.dtype, device=p.device))
    finally:
        model.train(was_training)
        for hd in handles:
            hd.remove()
    if counts["other"] == 0:
        del counts["other"]
    counts["total"] = sum(counts.values())
    return counts


def complexity(model: nn.Module, size: int = 640) -> dict[str, Any]:
    return {"params": count_params(model), "flops": count_flops(model, size), "size": size,
            "convention": CONVENTION}


def info_rows(models: list[str], size: int = 640) -> list[dict[str, Any]]:
    rows = []
    paper = paper_sizes()
    for name in models:
        cfg = load_config(name)
        c = complexity(build_model(cfg), size)
        official = OFFICIAL.get(cfg.name) if name in OFFICIAL else None
        row = {"model": name, **c}
        if name in paper:
            row["paper"] = paper[name]
        if official:
            row["official"] = official
            row["params_diff_pct"] = 100 * (c["params"]["total"] / official["params"] - 1)
            if "flops" in official and size == 640:
                row["flops_diff_pct"] = 100 * (c["flops"]["total"] / official["flops"] - 1)
        rows.append(row)
    return rows
