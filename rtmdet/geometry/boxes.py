"""Axis-aligned box utilities: point priors, distance coder, IoU and NMS.

Boxes are ``(x1, y1, x2, y2)`` in input pixels throughout. NMS uses torchvision's compiled
kernel when it is importable (the optional ``vision`` extra) and an exact pure-torch greedy NMS
otherwise; ``tests/geometry/test_boxes.py`` shows both keep the same boxes.
"""
from __future__ import annotations

from typing import Callable

import torch

try:  # torchvision pulls a CUDA torch on x86_64, so it is optional.
    import torchvision.ops as _tv_ops
except Exception:  # noqa: BLE001 - any import failure means "not usable"
    _tv_ops = None


def make_priors(feat_sizes: list[tuple[int, int]], strides: list[int] | tuple[int, ...],
                device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prior points ``(P, 2)`` as ``(x, y)`` and their strides ``(P,)``.

    One point per cell at the cell's top-left corner ``(j·s, i·s)`` (offset 0, as the official
    RTMDet), row-major, levels concatenated from the finest.
    """
    points, point_strides = [], []
    for (h, w), s in zip(feat_sizes, strides):
        ys = torch.arange(h, device=device, dtype=dtype) * s
        xs = torch.arange(w, device=device, dtype=dtype) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1))
        point_strides.append(torch.full((h * w,), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(point_strides)


def distance2bbox(points: torch.Tensor, distances: torch.Tensor,
                  max_shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Decode (left, top, right, bottom) distances from ``points`` into boxes.

    ``max_shape`` = (H, W) clips to the padded input canvas (test time only; training decodes
    unclipped so the IoU target reflects the raw prediction).
    """
    x1 = points[..., 0] - distances[..., 0]
    y1 = points[..., 1] - distances[..., 1]
    x2 = points[..., 0] + distances[..., 2]
    y2 = points[..., 1] + distances[..., 3]
    boxes = torch.stack([x1, y1, x2, y2], dim=-1)
    if max_shape is not None:
        h, w = max_shape
        boxes[..., 0::2] = boxes[..., 0::2].clamp(min=0, max=w)
        boxes[..., 1::2] = boxes[..., 1::2].clamp(min=0, max=h)
    return boxes


def bbox2distance(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`distance2bbox`: distances from each point to the box sides."""
    return torch.stack([points[..., 0] - boxes[..., 0], points[..., 1] - boxes[..., 1],
                        boxes[..., 2] - points[..., 0], boxes[..., 3] - points[..., 1]], dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor, aligned: bool = False,
            eps: float = 1e-6) -> torch.Tensor:
    """IoU of every pair ``(N, M)``, or of matching rows ``(N,)`` when ``aligned``."""
    if aligned:
        lt = torch.max(a[..., :2], b[..., :2])
        rb = torch.min(a[..., 2:], b[..., 2:])
    else:
        lt = torch.max(a[..., :, None, :2], b[..., None, :, :2])
        rb = torch.min(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a, area_b = box_area(a), box_area(b)
    union = area_a + area_b - inter if aligned else area_a[..., :, None] + area_b[..., None, :] - inter
    return inter / union.clamp(min=eps)


def _greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thr: float) -> torch.Tensor:
    """Exact greedy NMS for one class: a box is dropped when its IoU with a kept, higher-scored
    box is strictly greater than ``iou_thr``. Returns kept indices, highest score first."""
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes = boxes[order]
    n = boxes.shape[0]
    removed = torch.zeros(n, dtype=torch.bool)
    keep = []
    block = 2048  # rows of the IoU matrix at a time: memory stays O(block·n)
    for start in range(0, n, block):
        iou = box_iou(boxes[start:start + block], boxes) > iou_thr
        for r in range(iou.shape[0]):
            i = start + r
            if removed[i]:
                continue
            keep.append(i)
            removed[i + 1:] |= iou[r, i + 1:]
    return order[torch.tensor(keep, dtype=torch.long)]


def classwise_nms(nms: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
                  boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                  iou_thr: float) -> torch.Tensor:
    """Class-wise NMS from a one-class ``nms(boxes, scores, iou_thr)`` (axis-aligned or rotated
    boxes alike): run it per label, return the kept indices sorted by descending score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).squeeze(1)
        kept.append(idx[nms(boxes[idx], scores[idx], iou_thr)])
    keep = torch.cat(kept)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                iou_thr: float, use_torchvision: bool | None = None) -> torch.Tensor:
    """Class-wise NMS; returns kept indices sorted by descending score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if use_torchvision is None:
        use_torchvision = _tv_ops is not None
    if not use_torchvision:      # the exact greedy NMS runs on the CPU
        return classwise_nms(_greedy_nms, boxes.cpu(), scores.cpu(), labels.cpu(),
                             iou_thr).to(boxes.device)
    if _tv_ops is None:
        raise RuntimeError("torchvision is not installed (pip install '.[vision]')")
    keep = _tv_ops.batched_nms(boxes, scores, labels, iou_thr)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
