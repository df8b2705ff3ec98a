"""What every criterion needs besides its losses: ground truth padded into batch tensors (so the
assigner runs batched) and the cross-process mean of the loss normaliser (SPEC §5)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over processes when torch.distributed is initialised; identity otherwise."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def pad_targets(targets: list[dict[str, torch.Tensor]], num_classes: int,
                device: torch.device, dtype: torch.dtype, box_key: str = "boxes",
                box_dim: int = 4
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """List of per-image ``boxes`` (N, 4) / ``labels`` (N,) [/ ``centers`` (N, 2)] → padded
    (B, G, 4), (B, G), valid mask (B, G) [, (B, G, 2)]. The rotated criterion pads
    ``rboxes`` (N, 5) the same way (``box_key``, ``box_dim``)."""
    g = max([len(t["labels"]) for t in targets], default=0)
    b = len(targets)
    boxes = torch.zeros((b, g, box_dim), device=device, dtype=dtype)
    labels = torch.zeros((b, g), device=device, dtype=torch.long)
    valid = torch.zeros((b, g), device=device, dtype=torch.bool)
    with_centers = any("centers" in t for t in targets)
    centers = torch.zeros((b, g, 2), device=device, dtype=dtype) if with_centers else None
    for i, t in enumerate(targets):
        if box_key not in t:
            raise ValueError(f"target {i}: needs '{box_key}' ({box_dim} values per object)")
        tb, tl = t[box_key], t["labels"]
        n = len(tl)
        if tb.shape != (n, box_dim):
            raise ValueError(f"target {i}: {box_key} must be ({n}, {box_dim}), "
                             f"got {tuple(tb.shape)}")
        if n and (tl.min() < 0 or tl.max() >= num_classes):
            raise ValueError(f"target {i}: labels must be in [0, {num_classes}), "
                             f"got {tl.min().item()}..{tl.max().item()}")
        boxes[i, :n] = tb.to(device, dtype)
        labels[i, :n] = tl.to(device)
        valid[i, :n] = True
        if centers is not None:
            if "centers" not in t and n:
                raise ValueError(f"target {i}: 'centers' given for some images but not this one")
            if n:
                centers[i, :n] = t["centers"].to(device, dtype)
    return boxes, labels, valid, centers
