"""Head outputs + ground truth → RTMDet training losses (SPEC §5, §6).

Flattens the per-level raw outputs, decodes boxes (unclipped, so the IoU target measures the raw
prediction), runs the batched assigner on detached copies, then QFL over every prior and class
plus IoU-weighted GIoU over positives, both divided by one normaliser: the batch sum of positive
IoU targets, averaged over processes and clamped ≥ 1. Averaging it (rather than each worker using
its own) keeps every worker's gradient on the same scale, so DDP's gradient mean equals the
single-process large-batch gradient.
"""
from __future__ import annotations

import torch

from rtmdet.assigners import build_assigner
from rtmdet.assigners.dsla import AssignResult, DynamicSoftLabelAssigner
from rtmdet.geometry.boxes import distance2bbox, make_priors
from rtmdet.models.postprocess import flatten_levels

from .functional import giou_loss, quality_focal_loss
from .targets import pad_targets, reduce_mean


class RTMDetCriterion:
    box_key, box_dim = "boxes", 4            # what the targets hold (rotated: rboxes, 5)

    def __init__(self, assigner: DynamicSoftLabelAssigner, strides: tuple[int, ...] = (8, 16, 32),
                 qfl_beta: float = 2.0, cls_weight: float = 1.0, bbox_weight: float = 2.0,
                 giou_eps: float = 1e-6) -> None:
        self.assigner = assigner
        self.strides = tuple(strides)
        self.qfl_beta = qfl_beta
        self.cls_weight = cls_weight
        self.bbox_weight = bbox_weight
        self.giou_eps = giou_eps

    @classmethod
    def from_config(cls, train_cfg, strides: tuple[int, ...]) -> "RTMDetCriterion":
        """From a :class:`~rtmdet.config.TrainConfig` (its ``assigner``, of any
        ``train.assigner.type``, and ``loss``)."""
        loss = train_cfg.loss
        return cls(build_assigner(train_cfg.assigner), tuple(strides),
                   qfl_beta=loss.qfl_beta, cls_weight=loss.cls_weight,
                   bbox_weight=loss.bbox_weight, giou_eps=loss.giou_eps)

    def __call__(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                 targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``cls_scores`` per level (B, C, H, W) logits, ``bbox_preds`` per level (B, 4, H, W)
        distances in pixels; returns weighted ``loss_cls``, ``loss_bbox`` and their sum ``loss``.
        """
        return self.box_losses({"cls": cls_scores, "bbox": bbox_preds}, targets)[0]

    def box_losses(self, outputs: dict[str, list[torch.Tensor]],
                   targets: list[dict[str, torch.Tensor]]):
        """The prologue every criterion shares: check levels and targets, flatten every output
        to (B, P, ·), make the priors, decode (:meth:`decode`), pad the targets, assign, and the
        classification + box losses. Returns ``(losses, assign result, flat outputs, points,
        strides)`` so the Ins criterion can add its mask loss on the same assignment."""
        _, c = self.check_inputs(outputs, targets)
        cls_scores = outputs["cls"]
        device = cls_scores[0].device
        # Losses in float32 even under AMP: QFL's σ^β and the box areas lose too much in half.
        flat = {name: flatten_levels(levels).float() for name, levels in outputs.items()}
        points, strides = make_priors([tuple(x.shape[-2:]) for x in cls_scores], self.strides,
                                      device=device)
        decoded = self.decode(points, flat)
        gt_boxes, gt_labels, gt_valid, gt_centers = pad_targets(
            targets, c, device, torch.float32, box_key=self.box_key, box_dim=self.box_dim)
        result = self.assign(flat["cls"], torch.cat([points, strides[:, None]], 1), decoded,
                             gt_boxes, gt_labels, gt_valid, gt_centers)
        return self.losses(flat["cls"], decoded, gt_boxes, result), result, flat, points, strides

    def decode(self, points: torch.Tensor, flat: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unclipped boxes (B, P, 4) from the flattened distances (the rotated criterion decodes
        rotated boxes with the angles)."""
        return distance2bbox(points[None], flat["bbox"])

    def check_inputs(self, outputs: dict[str, list[torch.Tensor]],
                     targets: list[dict[str, torch.Tensor]]) -> tuple[int, int]:
        """Every head output has one tensor per stride and there is one target dict per image;
        returns (batch, classes) of the first output. Shared by the det, Ins and R criteria."""
        n = len(self.strides)
        if any(len(levels) != n for levels in outputs.values()):
            got = ", ".join(f"{len(levels)} {name}" for name, levels in outputs.items())
            raise ValueError(f"expected {n} levels (strides {self.strides}), got {got} outputs")
        b, c = next(iter(outputs.values()))[0].shape[:2]
        if len(targets) != b:
            raise ValueError(f"{len(targets)} targets for a batch of {b} images")
        return b, c

    def assign(self, logits, priors, decoded, gt_boxes, gt_labels, gt_valid, gt_centers
               ) -> AssignResult:
        return self.assigner.assign(logits.detach(), priors, decoded.detach(), gt_boxes,
                                    gt_labels, gt_valid, gt_centers)

    def box_loss(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                 ) -> torch.Tensor:
        """Summed, IoU-target-weighted box loss of the positives (GIoU here; the rotated
        criterion swaps in 1 − rotated IoU, everything else is shared)."""
        return giou_loss(pred, target, weight, self.giou_eps).sum()

    def losses(self, logits: torch.Tensor, decoded: torch.Tensor, gt_boxes: torch.Tensor,
               result: AssignResult) -> dict[str, torch.Tensor]:
        c = logits.shape[-1]
        pos = result.pos_mask
        normaliser = reduce_mean(result.ious[pos].sum().detach()).clamp(min=1)
        loss_cls = quality_focal_loss(logits.reshape(-1, c), result.labels.reshape(-1),
                                      result.ious.reshape(-1), self.qfl_beta).sum()
        img_idx = pos.nonzero()[:, 0]
        pos_targets = gt_boxes[img_idx, result.gt_inds[pos]]
        # Empty positives still touch the graph so DDP sees every regression parameter used.
        loss_bbox = self.box_loss(decoded[pos], pos_targets, result.ious[pos]) \
            if pos.any() else decoded.sum() * 0
        loss_cls = loss_cls / normaliser * self.cls_weight
        loss_bbox = loss_bbox / normaliser * self.bbox_weight
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss": loss_cls + loss_bbox}
