"""Head outputs + ground truth → RTMDet-R training losses (SPEC §10).

The detection criterion with the geometry swapped: priors are decoded into rotated boxes
(:func:`~rtmdet.geometry.rotated.distance2rbox`), the dynamic soft-label assigner costs them
with the exact rotated IoU, takes as candidates the priors strictly inside the gt shrunk by 0.01
px in the box's own frame, and measures the centre prior to the box centre. The box loss is
``1 − rotated IoU`` (IoU clamped ≥ 1e-6, so a positive without overlap still has a finite loss
and no NaN gradient), IoU-weighted and divided by the detection normaliser; QFL is unchanged.

A decoded box whose width ``l + r`` or height ``t + b`` is not positive counts as IoU 0, in the
assigner and in the loss. The geometry itself is sign-blind (|w|·|h|), so without this a randomly
initialised distance conv (linear for tiny/s, no ``exp``) happily converges to sign-flipped boxes
with high IoU — which the test path, like the official one (``min_bbox_size=0``), then discards
as empty: a synthetic run from scratch trained to positive IoU 0.9 and produced no detection.

Difficult objects stay in the targets: the official DOTA training set keeps them (its difficulty
threshold of 100 ignores nothing), only the evaluation ignores them.
"""
from __future__ import annotations

import torch

from rtmdet.assigners import build_assigner
from rtmdet.assigners.dsla import DynamicSoftLabelAssigner
from rtmdet.geometry.rotated import batched_points_in_rboxes, distance2rbox
from rtmdet.geometry.rotated_iou import batched_rbox_iou, rbox_iou

from .criterion import RTMDetCriterion

CANDIDATE_SHRINK = 0.01


def rbox_centers(gt: torch.Tensor) -> torch.Tensor:
    """The centre prior's reference point: the rotated box's centre ``(cx, cy)``."""
    return gt[..., :2]


def proper(rboxes: torch.Tensor) -> torch.Tensor:
    """1 where the box has positive width and height, else 0 (see the module docstring)."""
    return ((rboxes[..., 2] > 0) & (rboxes[..., 3] > 0)).to(rboxes.dtype)


def proper_rbox_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """The assigner's ``iou_fn``: pairwise rotated IoU, 0 for improper predictions."""
    return batched_rbox_iou(pred, gt) * proper(pred)[..., None]


def inside_shrunk_rboxes(points: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return batched_points_in_rboxes(points, gt, shrink=CANDIDATE_SHRINK)


class RotatedRTMDetCriterion(RTMDetCriterion):
    """Called as ``criterion(cls_scores, bbox_preds, angle_preds, targets)``."""
    box_key, box_dim = "rboxes", 5

    def __init__(self, assigner: DynamicSoftLabelAssigner, strides: tuple[int, ...] = (8, 16, 32),
                 qfl_beta: float = 2.0, cls_weight: float = 1.0, bbox_weight: float = 2.0,
                 iou_eps: float = 1e-6) -> None:
        super().__init__(assigner, strides, qfl_beta, cls_weight, bbox_weight, iou_eps)

    @classmethod
    def from_config(cls, train_cfg, strides: tuple[int, ...]) -> "RotatedRTMDetCriterion":
        loss = train_cfg.loss
        assigner = build_assigner(
            train_cfg.assigner, iou_fn=proper_rbox_iou, inside_fn=inside_shrunk_rboxes,
            center_fn=rbox_centers)
        return cls(assigner, tuple(strides), qfl_beta=loss.qfl_beta, cls_weight=loss.cls_weight,
                   bbox_weight=loss.bbox_weight, iou_eps=loss.giou_eps)

    def __call__(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                 angle_preds: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
                 ) -> dict[str, torch.Tensor]:
        if any("rboxes" not in t for t in targets):
            raise ValueError("rotated training needs 'rboxes' (N, 5) targets; is data.format 'dota'?")
        return self.box_losses({"cls": cls_scores, "bbox": bbox_preds, "angle": angle_preds},
                               targets)[0]

    def decode(self, points: torch.Tensor, flat: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rotated boxes (B, P, 5) from the flattened distances and angles."""
        b = flat["bbox"].shape[0]
        return distance2rbox(points[None].expand(b, -1, -1), flat["bbox"], flat["angle"])

    def box_loss(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                 ) -> torch.Tensor:
        """1 − rotated IoU (clamped ≥ 1e-6), IoU-target-weighted; boxes with non-positive
        width or height count as IoU 0 (see the module docstring)."""
        iou = rbox_iou(pred, target, aligned=True) * proper(pred)
        return ((1 - iou.clamp(min=self.giou_eps)) * weight).sum()
