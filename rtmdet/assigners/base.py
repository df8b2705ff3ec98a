"""What every alternative assigner shares with the dynamic soft-label one: the call signature,
the one-image convenience form and the input normalisation.

Why a base class: the criterion (and its instance/rotated subclasses) call
``assigner.assign(logits, priors, decoded, gt_boxes, gt_labels, gt_valid, gt_centers)`` and read
only :class:`~rtmdet.assigners.dsla.AssignResult`; an assigner that honours this contract is a drop-in
replacement, so comparing assigners changes nothing else in the loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rtmdet.geometry.boxes import box_iou

from .dsla import AssignResult, assign_with_batch_dim, box_centers


@dataclass
class AssignInputs:
    """Detached inputs in a float dtype of at least float32 (float64 stays float64, so tests
    can compare with exact references), padding labels clamped to a valid class index."""
    logits: torch.Tensor        # (B, P, C)
    priors: torch.Tensor        # (P, 3) x, y, stride
    pred_boxes: torch.Tensor    # (B, P, 4)
    gt_boxes: torch.Tensor      # (B, G, 4)
    gt_labels: torch.Tensor     # (B, G) long
    gt_valid: torch.Tensor      # (B, G) bool
    gt_centers: torch.Tensor    # (B, G, 2)


def background(b: int, p: int, device: torch.device) -> AssignResult:
    """Everything background: gt index −1, IoU target 0, label −1."""
    return AssignResult(torch.full((b, p), -1, dtype=torch.long, device=device),
                        torch.zeros((b, p), dtype=torch.float32, device=device),
                        torch.full((b, p), -1, dtype=torch.long, device=device))


def gt_chunks(g: int, size: int) -> list[slice]:
    """Slices of at most ``size`` gts: the (B, P, G) intermediates are built one chunk at a
    time, so 500 gts at 640 px need no more memory than ``size`` of them."""
    return [slice(s, min(s + size, g)) for s in range(0, g, size)]


class BatchedAssigner:
    """Subclasses implement :meth:`_assign` on batched, normalised inputs (never empty)."""

    max_gts_per_chunk: int = 256

    @torch.no_grad()
    def assign(self, pred_scores: torch.Tensor, priors: torch.Tensor,
               decoded_bboxes: torch.Tensor, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor,
               gt_valid: torch.Tensor | None = None, gt_centers: torch.Tensor | None = None
               ) -> AssignResult:
        """Same arguments as :meth:`rtmdet.assigners.dsla.DynamicSoftLabelAssigner.assign`: logits
        (B, P, C) or (P, C) for one image, priors (P, 3), boxes (B, P, 4), padded gts (B, G, 4)
        with labels (B, G), ``gt_valid`` (B, G) and optional ``gt_centers`` (B, G, 2)."""
        return assign_with_batch_dim(self._assign_batched, pred_scores, priors, decoded_bboxes,
                                     gt_bboxes, gt_labels, gt_valid, gt_centers)

    def _assign_batched(self, pred_scores, priors, decoded_bboxes, gt_bboxes, gt_labels,
                        gt_valid, gt_centers) -> AssignResult:
        b, p, _ = pred_scores.shape
        if gt_bboxes.shape[1] == 0 or p == 0:
            return background(b, p, pred_scores.device)
        return self._assign(self._inputs(pred_scores, priors, decoded_bboxes, gt_bboxes,
                                         gt_labels, gt_valid, gt_centers))

    @staticmethod
    def _inputs(logits, priors, pred_boxes, gt_boxes, gt_labels, gt_valid, gt_centers
                ) -> AssignInputs:
        dtype = torch.promote_types(logits.dtype, torch.float32)
        gt_boxes = gt_boxes.detach().to(dtype)
        if gt_valid is None:
            gt_valid = torch.ones(gt_boxes.shape[:2], dtype=torch.bool, device=gt_boxes.device)
        centers = box_centers(gt_boxes) if gt_centers is None else gt_centers.detach().to(dtype)
        return AssignInputs(logits.detach().to(dtype), priors.detach().to(dtype),
                            pred_boxes.detach().to(dtype), gt_boxes,
                            gt_labels.long().clamp(min=0), gt_valid, centers)

    def _assign(self, x: AssignInputs) -> AssignResult:
        raise NotImplementedError

    @staticmethod
    def _matched_iou(x: AssignInputs, gt_inds: torch.Tensor) -> torch.Tensor:
        """(B, P) IoU of each prediction with its matched gt (any value where unmatched): the
        QFL target and box-loss weight, as the dynamic soft-label assigner returns it."""
        idx = gt_inds.clamp(min=0)[..., None].expand(-1, -1, 4)
        return box_iou(x.pred_boxes, x.gt_boxes.gather(1, idx), aligned=True)

    @staticmethod
    def _finish(x: AssignInputs, gt_inds: torch.Tensor, ious: torch.Tensor) -> AssignResult:
        """Labels from the matched gts; background IoU and label reset to 0 / −1."""
        pos = gt_inds >= 0
        labels = torch.where(pos, x.gt_labels.gather(1, gt_inds.clamp(min=0)), -1)
        return AssignResult(gt_inds, torch.where(pos, ious, 0).float(), labels)
