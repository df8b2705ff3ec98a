"""SimOTA (YOLOX, Ge et al. 2021), written from the paper's description.

For every gt: the *candidates* are priors whose point lies inside the gt box or within
``center_radius·stride`` of the gt centre (a square region, per axis); the pair cost is

    cls_weight · Σ_c BCE(σ(logit_c), onehot(gt class)_c) + iou_weight · (−log IoU)
    + 1e5 if the prior is not inside *both* the box and the centre region,

the dynamic k of a gt is ``max(1, int(Σ of its top-candidate_topk candidate IoUs))``, each gt
takes its k cheapest candidates, and a prior claimed by several gts keeps the cheapest of them.

Why a subclass of the dynamic soft-label assigner: the two share the candidate → cost → dynamic-k
→ top-k → cheapest-wins machinery (RTMDet's assigner *is* SimOTA with another cost), so only the
candidate set and the cost differ and everything else — batching over images, padded gts,
chunking over gts, tie handling — is the same code, which keeps the comparison about the cost.

Choices (documented deviations from the YOLOX code, which we did not copy):
- No objectness branch in RTMDet: the class score is ``σ(logit)`` (YOLOX uses √(cls·obj)).
  The BCE is computed from logits, ``Σ_c softplus(l_c) − l_gt``, so it never takes log 0.
- Conflicts: cheapest among the gts that *selected* the prior (as RTMDet's assigner); the YOLOX
  code takes the argmin over all gts, which can hand a prior to a gt that did not pick it.
- Prior points are the cells' top-left corners (offset 0), as everywhere in this project.
- The IoU in the cost and the dynamic k is the decoded prediction's, ``−log(IoU + 1e-8)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dsla import DynamicSoftLabelAssigner, points_inside_boxes


def inside_center_region(priors: torch.Tensor, centers: torch.Tensor, radius: float
                         ) -> torch.Tensor:
    """Strictly within ``radius·stride`` of the gt centre on both axes: (P,3),(B,G,2) → (B,P,G)."""
    r = radius * priors[None, :, None, 2]
    dx = (priors[None, :, None, 0] - centers[:, None, :, 0]).abs()
    dy = (priors[None, :, None, 1] - centers[:, None, :, 1]).abs()
    return (dx < r) & (dy < r)


def onehot_bce_cost(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``Σ_c BCE(σ(l_c), onehot(label)_c)`` for every prior × gt: (B,P,C),(B,G) → (B,P,G).

    Every class contributes ``−log(1 − σ(l)) = softplus(l)``, except the gt class, which
    contributes ``−log σ(l) = softplus(−l)``; as ``softplus(l) − softplus(−l) = l`` the sum is
    the per-prior total minus the gt class's logit — no (B, P, G, C) tensor is built.
    """
    total = F.softplus(logits).sum(dim=-1, keepdim=True)                 # (B,P,1)
    idx = labels[:, None, :].expand(-1, logits.shape[1], -1)            # (B,P,G)
    return total - logits.gather(2, idx)


class SimOTAAssigner(DynamicSoftLabelAssigner):
    """See the module docstring; the constructor arguments mirror
    :class:`rtmdet.config.SimOTAConfig`."""

    def __init__(self, center_radius: float = 2.5, candidate_topk: int = 10,
                 iou_weight: float = 3.0, cls_weight: float = 1.0, iou_eps: float = 1e-8,
                 outside_cost: float = 1e5, max_gts_per_chunk: int = 256) -> None:
        super().__init__(topk=candidate_topk, iou_eps=iou_eps,
                         max_gts_per_chunk=max_gts_per_chunk)
        self.center_radius = center_radius
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight
        self.outside_cost = outside_cost

    @classmethod
    def from_config(cls, cfg, **geometry) -> "SimOTAAssigner":
        """From an :class:`~rtmdet.config.AssignerConfig` (its ``simota`` section)."""
        if geometry:
            raise ValueError("train.assigner.type=simota supports axis-aligned boxes only")
        s = cfg.simota
        return cls(center_radius=s.center_radius, candidate_topk=s.candidate_topk,
                   iou_weight=s.iou_weight, cls_weight=s.cls_weight,
                   max_gts_per_chunk=cfg.max_gts_per_chunk)

    def _candidates(self, priors: torch.Tensor, gt_boxes: torch.Tensor, gt_valid: torch.Tensor,
                    gt_centers: torch.Tensor, chunks: list[slice]) -> torch.Tensor:
        """(B, P): inside some valid gt box *or* some valid gt's centre region."""
        candidate = torch.zeros(gt_valid.shape[:1] + priors.shape[:1], dtype=torch.bool,
                                device=priors.device)
        for sl in chunks:
            near = points_inside_boxes(priors[:, :2], gt_boxes[:, sl]) \
                | inside_center_region(priors, gt_centers[:, sl], self.center_radius)
            candidate |= (near & gt_valid[:, None, sl]).any(dim=2)
        return candidate

    def _cost(self, logits: torch.Tensor, priors: torch.Tensor, iou: torch.Tensor,
              labels: torch.Tensor, centers: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        both = points_inside_boxes(priors[:, :2], boxes) \
            & inside_center_region(priors, centers, self.center_radius)
        cost = self.iou_weight * -torch.log(iou + self.iou_eps)
        if self.cls_weight:
            cost = cost + self.cls_weight * onehot_bce_cost(logits, labels)
        return cost + self.outside_cost * (~both).to(cost.dtype)
