"""Dynamic soft-label assigner (SPEC §5), batched over images and chunked over ground truths.

Every prior whose point lies strictly inside some gt box is a *candidate*; each candidate is
costed against **every** gt of its image (cls + reg + centre prior), each gt takes its dynamic-k
cheapest candidates, and a prior claimed by several gts keeps the cheapest one.

Why batched and chunked: per image Python loops dominate the training step on small models, and a
(B, P, G, C) class-cost tensor does not fit anywhere at G = 500. The class cost is therefore
computed without a class dimension (see :func:`soft_cls_cost`) and the gts are processed
``max_gts_per_chunk`` at a time; dynamic k and the top-k are per-gt (column) operations, and the
"lowest cost wins" rule is a running minimum over chunks, so chunking changes no result.

The geometry is pluggable so RTMDet-R can reuse everything: ``iou_fn`` (rotated IoU),
``inside_fn`` (point inside the gt shrunk by 0.01 in the box frame) and ``center_fn`` (box centre
from ``(cx, cy, w, h, θ)``). RTMDet-Ins passes ``gt_centers`` (mask centres of mass).

This is ``train.assigner.type: dsla`` (the default); the alternatives for the assigner comparison
(SimOTA, ATSS, task-aligned) live in :mod:`rtmdet.assigners`, built by ``build_assigner``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from rtmdet.geometry.boxes import box_iou

IouFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]      # (B,P,D),(B,G,D) -> (B,P,G)
InsideFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (P,2),(B,G,D) -> (B,P,G) bool
CenterFn = Callable[[torch.Tensor], torch.Tensor]                 # (B,G,D) -> (B,G,2)


def pairwise_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of every prediction with every gt of the same image: (B,P,4),(B,G,4) -> (B,P,G)."""
    return box_iou(pred, gt)


def points_inside_boxes(points: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Strictly inside (a point on an edge is not a candidate): (P,2),(B,G,4) -> (B,P,G)."""
    x = points[None, :, None, 0]
    y = points[None, :, None, 1]
    g = gt[:, None, :, :]
    return (x > g[..., 0]) & (y > g[..., 1]) & (x < g[..., 2]) & (y < g[..., 3])


def box_centers(gt: torch.Tensor) -> torch.Tensor:
    return (gt[..., :2] + gt[..., 2:4]) / 2


def soft_cls_cost(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor
                  ) -> torch.Tensor:
    """``Σ_c BCE(logit_c, y_c)·|y_c − σ(logit_c)|²`` with ``y = onehot(label)·target``.

    ``logits`` (B,P,C), ``labels`` (B,G) long, ``target`` (B,P,G) the value of y at the gt
    class (IoU for the soft label, 1 for the hard one) → (B,P,G). Every class with y = 0 adds
    ``softplus(l)·σ(l)²``; so the sum is that per-prior total with the gt class's zero-label term
    swapped for its labelled term — no (B,P,G,C) tensor is ever built.
    """
    sig = logits.sigmoid()
    neg = F.softplus(logits) * sig.pow(2)                       # BCE(l, 0)·σ(l)²
    total_neg = neg.sum(dim=-1, keepdim=True)                   # (B,P,1)
    idx = labels[:, None, :].expand(-1, logits.shape[1], -1)    # (B,P,G)
    l_g = logits.gather(2, idx)
    s_g = sig.gather(2, idx)
    neg_g = neg.gather(2, idx)
    pos_g = F.binary_cross_entropy_with_logits(l_g, target, reduction="none") \
        * (target - s_g).pow(2)
    return total_neg - neg_g + pos_g


@dataclass
class AssignResult:
    """Per prior (B, P): matched gt index (−1 background), IoU with it (0 background, the soft
    classification target) and its label (−1 background)."""
    gt_inds: torch.Tensor
    ious: torch.Tensor
    labels: torch.Tensor

    @property
    def pos_mask(self) -> torch.Tensor:
        return self.gt_inds >= 0


def assign_with_batch_dim(assign_batched: Callable[..., AssignResult], pred_scores: torch.Tensor,
                          priors: torch.Tensor, decoded_bboxes: torch.Tensor,
                          gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
                          gt_valid: torch.Tensor | None, gt_centers: torch.Tensor | None
                          ) -> AssignResult:
    """The one-image form every assigner accepts: (P, C) logits and (G, ·) gts get a batch dim
    of 1 for ``assign_batched`` and lose it again in the result."""
    single = pred_scores.dim() == 2
    if single:
        pred_scores, decoded_bboxes = pred_scores[None], decoded_bboxes[None]
        gt_bboxes, gt_labels = gt_bboxes[None], gt_labels[None]
        gt_valid = None if gt_valid is None else gt_valid[None]
        gt_centers = None if gt_centers is None else gt_centers[None]
    result = assign_batched(pred_scores, priors, decoded_bboxes, gt_bboxes, gt_labels,
                            gt_valid, gt_centers)
    if single:
        result = AssignResult(result.gt_inds[0], result.ious[0], result.labels[0])
    return result


class DynamicSoftLabelAssigner:
    """See the module docstring. Every knob of the assignment ablation is a constructor argument
    (mirrored in :class:`rtmdet.config.AssignerConfig`)."""

    def __init__(self, topk: int = 13, cls_cost: bool = True, soft_label: bool = True,
                 reg_weight: float = 3.0, log_iou_cost: bool = True, center_prior: bool = True,
                 center_base: float = 10.0, center_offset: float = 3.0, iou_eps: float = 1e-7,
                 max_gts_per_chunk: int = 256, iou_fn: IouFn = pairwise_iou,
                 inside_fn: InsideFn = points_inside_boxes,
                 center_fn: CenterFn = box_centers) -> None:
        if topk < 1 or max_gts_per_chunk < 1:
            raise ValueError("topk and max_gts_per_chunk must be >= 1")
        self.topk = topk
        self.cls_cost = cls_cost
        self.soft_label = soft_label
        self.reg_weight = reg_weight
        self.log_iou_cost = log_iou_cost
        self.center_prior = center_prior
        self.center_base = center_base
        self.center_offset = center_offset
        self.iou_eps = iou_eps
        self.max_gts_per_chunk = max_gts_per_chunk
        self.iou_fn = iou_fn
        self.inside_fn = inside_fn
        self.center_fn = center_fn

    @classmethod
    def from_config(cls, cfg, **geometry) -> "DynamicSoftLabelAssigner":
        """From an :class:`~rtmdet.config.AssignerConfig`; ``geometry`` = iou_fn/inside_fn/…"""
        return cls(topk=cfg.topk, cls_cost=cfg.cls_cost, soft_label=cfg.soft_label,
                   reg_weight=cfg.reg_weight, log_iou_cost=cfg.log_iou_cost,
                   center_prior=cfg.center_prior, center_base=cfg.center_base,
                   center_offset=cfg.center_offset, iou_eps=cfg.iou_eps,
                   max_gts_per_chunk=cfg.max_gts_per_chunk, **geometry)

    @torch.no_grad()
    def assign(self, pred_scores: torch.Tensor, priors: torch.Tensor,
               decoded_bboxes: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               gt_valid: torch.Tensor | None = None, gt_centers: torch.Tensor | None = None
               ) -> AssignResult:
        """Assign priors to gts.

        Args:
            pred_scores: (B, P, C) raw logits (or (P, C) for one image).
            priors: (P, 3) ``(x, y, stride)`` shared by the batch.
            decoded_bboxes: (B, P, D) predicted boxes (D = 4 xyxy, 5 for rotated).
            gt_bboxes: (B, G, D) padded to the largest count; gt_labels (B, G) long.
            gt_valid: (B, G) bool, False for padding (default: all valid).
            gt_centers: (B, G, 2) centres for the centre prior (default: ``center_fn``).
        """
        return assign_with_batch_dim(self._assign, pred_scores, priors, decoded_bboxes,
                                     gt_bboxes, gt_labels, gt_valid, gt_centers)

    def _assign(self, logits, priors, pred_boxes, gt_boxes, gt_labels, gt_valid, gt_centers
                ) -> AssignResult:
        b, p, _ = logits.shape
        g = gt_boxes.shape[1]
        device = logits.device
        gt_inds = torch.full((b, p), -1, dtype=torch.long, device=device)
        ious = torch.zeros((b, p), dtype=torch.float32, device=device)
        labels = torch.full((b, p), -1, dtype=torch.long, device=device)
        if g == 0 or p == 0:
            return AssignResult(gt_inds, ious, labels)
        # Costs in float32 at least: under AMP the 10**x centre prior overflows half at once.
        dtype = torch.promote_types(logits.dtype, torch.float32)
        logits = logits.detach().to(dtype)
        pred_boxes = pred_boxes.detach().to(dtype)
        gt_boxes = gt_boxes.detach().to(dtype)
        priors = priors.detach().to(dtype)
        gt_labels = gt_labels.long().clamp(min=0)   # padding may carry -1; it is masked
        if gt_valid is None:
            gt_valid = torch.ones((b, g), dtype=torch.bool, device=device)
        if gt_centers is None:
            gt_centers = self.center_fn(gt_boxes)
        gt_centers = gt_centers.detach().to(dtype)
        chunks = [slice(s, min(s + self.max_gts_per_chunk, g))
                  for s in range(0, g, self.max_gts_per_chunk)]

        # Pass 1: candidates = priors strictly inside at least one (valid) gt of their image.
        candidate = self._candidates(priors, gt_boxes, gt_valid, gt_centers, chunks)

        # Pass 2: per chunk, cost → dynamic k → top-k; keep the running cheapest gt per prior.
        big = torch.finfo(dtype).max
        best_cost = torch.full((b, p), math.inf, dtype=dtype, device=device)
        k_max = min(self.topk, p)
        for sl in chunks:
            iou = self.iou_fn(pred_boxes, gt_boxes[:, sl]).to(dtype)           # (B,P,Gc)
            cost = self._cost(logits, priors, iou, gt_labels[:, sl], gt_centers[:, sl],
                              gt_boxes[:, sl])
            usable = candidate[:, :, None] & gt_valid[:, None, sl]
            # Candidates rank before non-candidates even where a cost overflowed to inf.
            cost = torch.where(usable, cost.nan_to_num(nan=big, posinf=big), math.inf)
            top_iou = torch.where(usable, iou, 0).topk(k_max, dim=1).values    # (B,k,Gc)
            dyn_k = top_iou.sum(dim=1).int().clamp(min=1)                      # (B,Gc)
            order = cost.topk(k_max, dim=1, largest=False).indices             # (B,k,Gc)
            rank = torch.arange(k_max, device=device)[None, :, None]
            chosen = (rank < dyn_k[:, None, :]).to(dtype)
            match = torch.zeros_like(cost).scatter_(1, order, chosen).bool() & usable
            masked = torch.where(match, cost, math.inf)
            chunk_cost, chunk_arg = masked.min(dim=2)                           # (B,P)
            better = match.any(dim=2) & (chunk_cost < best_cost)
            best_cost = torch.where(better, chunk_cost, best_cost)
            gt_inds = torch.where(better, chunk_arg + sl.start, gt_inds)
            ious = torch.where(better, iou.gather(2, chunk_arg[..., None])[..., 0].float(), ious)
        pos = gt_inds >= 0
        labels = torch.where(pos, gt_labels.gather(1, gt_inds.clamp(min=0)), labels)
        return AssignResult(gt_inds, ious, labels)

    def _candidates(self, priors: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor,
                    gt_centers: torch.Tensor, chunks: list[slice]) -> torch.Tensor:
        """(B, P) bool: the priors strictly inside at least one valid gt. A hook so SimOTA
        (:mod:`rtmdet.assigners.simota`) can widen it with its centre region and reuse the
        dynamic-k matching unchanged."""
        candidate = torch.zeros(gt_valid.shape[:1] + priors.shape[:1], dtype=torch.bool,
                                device=priors.device)
        for sl in chunks:
            inside = self.inside_fn(priors[:, :2], gt_boxes[:, sl]) & gt_valid[:, None, sl]
            candidate |= inside.any(dim=2)
        return candidate

    def _cost(self, logits: torch.Tensor, priors: torch.Tensor, iou: torch.Tensor,
              labels: torch.Tensor, centers: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(B, P, Gc) matching cost of every prior with every gt of the chunk (``boxes`` unused
        here; SimOTA's cost needs them)."""
        cost = torch.zeros_like(iou)
        if self.reg_weight:
            reg = -torch.log(iou + self.iou_eps) if self.log_iou_cost else 1 - iou
            cost = cost + reg * self.reg_weight
        if self.cls_cost:
            target = iou if self.soft_label else torch.ones_like(iou)
            cost = cost + soft_cls_cost(logits, labels, target)
        if self.center_prior:
            dist = (priors[None, :, None, :2] - centers[:, None, :, :]).pow(2).sum(-1).sqrt()
            cost = cost + torch.pow(self.center_base,
                                    dist / priors[None, :, None, 2] - self.center_offset)
        return cost
