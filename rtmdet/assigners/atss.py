"""Adaptive training sample selection (ATSS, Zhang et al. 2020), written from the paper.

For every gt: on each pyramid level the ``topk`` priors whose points are closest (L2) to the gt
centre are candidates; the gt's IoU threshold is the mean + standard deviation of the candidates'
IoUs; a candidate is positive when its IoU ≥ threshold and its point lies strictly inside the gt.
A prior positive for several gts goes to the one it overlaps most.

Which IoU: ATSS ranks *anchors*, and an anchor-free detector has none, so — as the ATSS paper does
for its anchor-free FCOS variant — every prior gets a square anchor of side
``anchor_scale·stride`` (8·stride) centred on its point. The selection and the conflict rule use
that anchor IoU (it does not depend on the predictions, which is what makes ATSS a static
assigner); the returned ``ious`` (the QFL target and box-loss weight in
:mod:`rtmdet.losses.criterion`) are, as for every assigner here, the IoU of the *decoded prediction* with
its gt, so the loss is unchanged and only the choice of positives differs.

Other choices: the standard deviation is the unbiased one (n − 1), and a gt with a single
candidate (std undefined) uses threshold = its mean; ``gt_centers`` (mask centres for
RTMDet-Ins) replace box centres for the distance when given; priors are grouped into levels by
their stride. Batched over images, chunked over gts; only the (≤ 5) levels are a Python loop.
"""
from __future__ import annotations

import torch

from rtmdet.geometry.boxes import box_iou

from .base import AssignInputs, BatchedAssigner, gt_chunks
from .dsla import AssignResult, points_inside_boxes


def prior_anchors(priors: torch.Tensor, scale: float) -> torch.Tensor:
    """Square xyxy boxes of side ``scale·stride`` centred on the prior points: (P,3) → (P,4)."""
    half = priors[:, 2:3] * (scale / 2)
    return torch.cat([priors[:, :2] - half, priors[:, :2] + half], dim=1)


def level_indices(strides: torch.Tensor) -> list[torch.Tensor]:
    """Prior indices of each pyramid level (priors sharing a stride), finest first."""
    return [torch.nonzero(strides == s).squeeze(1) for s in torch.unique(strides)]


class ATSSAssigner(BatchedAssigner):
    """See the module docstring; arguments mirror :class:`rtmdet.config.ATSSConfig`."""

    def __init__(self, topk: int = 9, anchor_scale: float = 8.0,
                 max_gts_per_chunk: int = 256) -> None:
        if topk < 1 or max_gts_per_chunk < 1:
            raise ValueError("topk and max_gts_per_chunk must be >= 1")
        self.topk = topk
        self.anchor_scale = anchor_scale
        self.max_gts_per_chunk = max_gts_per_chunk

    @classmethod
    def from_config(cls, cfg, **geometry) -> "ATSSAssigner":
        """From an :class:`~rtmdet.config.AssignerConfig` (its ``atss`` section)."""
        if geometry:
            raise ValueError("train.assigner.type=atss supports axis-aligned boxes only")
        return cls(topk=cfg.atss.topk, anchor_scale=cfg.atss.anchor_scale,
                   max_gts_per_chunk=cfg.max_gts_per_chunk)

    def candidates(self, priors: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """(B, K, G) prior indices: per level the ``topk`` closest to each gt centre."""
        dist = (priors[None, :, None, :2] - centers[:, None, :, :]).pow(2).sum(-1)   # (B,P,G)
        out = []
        for idx in level_indices(priors[:, 2]):
            k = min(self.topk, idx.numel())
            near = dist[:, idx].topk(k, dim=1, largest=False).indices                 # (B,k,G)
            out.append(idx[near])
        return torch.cat(out, dim=1)

    def _assign(self, x: AssignInputs) -> AssignResult:
        b, p, g = x.logits.shape[0], x.priors.shape[0], x.gt_boxes.shape[1]
        anchors = prior_anchors(x.priors, self.anchor_scale)[None]                    # (1,P,4)
        gt_inds = torch.full((b, p), -1, dtype=torch.long, device=x.logits.device)
        best = torch.full((b, p), -1.0, dtype=x.logits.dtype, device=x.logits.device)
        for sl in gt_chunks(g, self.max_gts_per_chunk):
            boxes = x.gt_boxes[:, sl]
            iou = box_iou(anchors, boxes)                                             # (B,P,Gc)
            cand = self.candidates(x.priors, x.gt_centers[:, sl])                     # (B,K,Gc)
            cand_iou = iou.gather(1, cand)
            std = cand_iou.std(dim=1, keepdim=True) if cand.shape[1] > 1 else 0
            thr = cand_iou.mean(dim=1, keepdim=True) + std
            inside = points_inside_boxes(x.priors[:, :2], boxes).gather(1, cand)
            cand_pos = (cand_iou >= thr) & inside & x.gt_valid[:, None, sl]
            pos = torch.zeros_like(iou, dtype=torch.bool).scatter_(1, cand, cand_pos)
            chunk_best, chunk_arg = torch.where(pos, iou, -1.0).max(dim=2)            # (B,P)
            better = pos.any(dim=2) & (chunk_best > best)
            best = torch.where(better, chunk_best, best)
            gt_inds = torch.where(better, chunk_arg + sl.start, gt_inds)
        return self._finish(x, gt_inds, self._matched_iou(x, gt_inds))
