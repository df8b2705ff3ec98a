"""Class-wise rotated NMS (SPEC §10: DOTA test path, 0.1 IoU), exact and memory-bounded: only
pairs whose circumscribed circles meet are ever compared."""
from __future__ import annotations

import numpy as np
import torch

from .boxes import classwise_nms
from .rotated_iou import rbox_iou


def _candidate_pairs(boxes: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """Index pairs (i < j) whose circumscribed circles meet: the only pairs with IoU > 0."""
    radius = 0.5 * torch.hypot(boxes[:, 2], boxes[:, 3])
    pairs = []
    for s in range(0, boxes.shape[0], block):
        d = torch.cdist(boxes[s:s + block, :2], boxes[:, :2],
                        compute_mode="donot_use_mm_for_euclid_dist")  # exact, not |a|²+|b|²−2ab
        near = d <= radius[s:s + block, None] + radius[None, :]
        idx = torch.nonzero(near)
        idx[:, 0] += s
        pairs.append(idx[idx[:, 0] < idx[:, 1]])
    return torch.cat(pairs) if pairs else boxes.new_zeros((0, 2), dtype=torch.long)


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thr: float) -> torch.Tensor:
    """Exact greedy NMS for one class: a box is dropped when its IoU with a kept, higher-scored
    box is strictly greater than ``iou_thr``. Returns kept indices, highest score first.

    Only pairs whose circumscribed circles meet get an exact IoU, so merging thousands of patch
    detections per class stays cheap.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].detach().to("cpu", torch.float64)
    n = b.shape[0]
    pairs = _candidate_pairs(b)
    if pairs.numel():
        iou = rbox_iou(b[pairs[:, 0]], b[pairs[:, 1]], aligned=True)
        pairs = pairs[iou > iou_thr]
    pairs_np = pairs.numpy()
    starts = np.searchsorted(pairs_np[:, 0], np.arange(n + 1)) if len(pairs_np) else None
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        if starts is not None:
            removed[pairs_np[starts[i]:starts[i + 1], 1]] = True
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def batched_rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                        iou_thr: float) -> torch.Tensor:
    """Class-wise rotated NMS; kept indices sorted by descending score."""
    return classwise_nms(rotated_nms, boxes, scores, labels, iou_thr)
