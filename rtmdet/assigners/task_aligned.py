"""Task-aligned assigner (TOOD, Feng et al. 2021) without the task-aligned head, from the paper.

For every prior × gt the alignment metric is ``t = s^alpha · u^beta`` (s = predicted score
``σ(logit)`` of the gt's class, u = IoU of the decoded prediction with the gt). Among the priors
whose point lies strictly inside the gt and whose ``t > 0``, the ``topk`` largest ``t`` are the
gt's positives; a prior positive for several gts keeps the one with the highest IoU u.

Choices (the paper leaves them open; the TOOD code was not copied):
- Inside-the-gt filter *before* the top-k (TOOD's code takes the top-k over all priors, then
  drops those outside), so a gt gets up to ``topk`` positives whenever that many priors lie in it.
- ``t > 0`` is required: a prediction not overlapping the gt at all is not aligned with it.
- Conflicts go to the highest IoU (as TOOD), not the highest t.
- Soft target (``target``): ``"iou"`` (default) returns the prediction's IoU, exactly what RTMDet's
  QFL, box-loss weight and normaliser expect (SPEC §6), so only the positives differ from the
  other assigners. ``"alignment"`` returns TOOD's normalised metric
  ``t / max t of the gt's positives · max IoU of the gt's positives``; the criterion then uses it
  for all three (QFL target, box weight, normaliser), as TOOD does.
- No ATSS warm-up for the first epochs (TOOD's schedule) and no task-aligned head ("w/o TAH").
"""
from __future__ import annotations

import torch

from rtmdet.geometry.boxes import box_iou

from .base import AssignInputs, BatchedAssigner, gt_chunks
from .dsla import AssignResult, points_inside_boxes


class TaskAlignedAssigner(BatchedAssigner):
    """See the module docstring; arguments mirror :class:`rtmdet.config.TaskAlignedConfig`."""

    def __init__(self, topk: int = 13, alpha: float = 1.0, beta: float = 6.0,
                 target: str = "iou", max_gts_per_chunk: int = 256) -> None:
        if topk < 1 or max_gts_per_chunk < 1:
            raise ValueError("topk and max_gts_per_chunk must be >= 1")
        if target not in ("iou", "alignment"):
            raise ValueError(f"target must be 'iou' or 'alignment', got {target!r}")
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.target = target
        self.max_gts_per_chunk = max_gts_per_chunk

    @classmethod
    def from_config(cls, cfg, **geometry) -> "TaskAlignedAssigner":
        """From an :class:`~rtmdet.config.AssignerConfig` (its ``task_aligned`` section)."""
        if geometry:
            raise ValueError("train.assigner.type=task_aligned supports axis-aligned boxes only")
        t = cfg.task_aligned
        return cls(topk=t.topk, alpha=t.alpha, beta=t.beta, target=t.target,
                   max_gts_per_chunk=cfg.max_gts_per_chunk)

    def alignment(self, logits: torch.Tensor, iou: torch.Tensor, labels: torch.Tensor
                  ) -> torch.Tensor:
        """``σ(logit of the gt class)^alpha · IoU^beta``: (B,P,C),(B,P,G),(B,G) → (B,P,G)."""
        idx = labels[:, None, :].expand(-1, logits.shape[1], -1)
        return logits.gather(2, idx).sigmoid().pow(self.alpha) * iou.pow(self.beta)

    def _assign(self, x: AssignInputs) -> AssignResult:
        b, p, g = x.logits.shape[0], x.priors.shape[0], x.gt_boxes.shape[1]
        device, dtype = x.logits.device, x.logits.dtype
        gt_inds = torch.full((b, p), -1, dtype=torch.long, device=device)
        best_iou = torch.full((b, p), -1.0, dtype=dtype, device=device)
        best_t = torch.zeros((b, p), dtype=dtype, device=device)
        k = min(self.topk, p)
        for sl in gt_chunks(g, self.max_gts_per_chunk):
            boxes = x.gt_boxes[:, sl]
            iou = box_iou(x.pred_boxes, boxes)                                      # (B,P,Gc)
            t = self.alignment(x.logits, iou, x.gt_labels[:, sl])
            usable = points_inside_boxes(x.priors[:, :2], boxes) & x.gt_valid[:, None, sl] \
                & (t > 0)
            top = torch.where(usable, t, -1.0).topk(k, dim=1).indices              # (B,k,Gc)
            pos = torch.zeros_like(usable).scatter_(1, top, True) & usable
            chunk_iou, chunk_arg = torch.where(pos, iou, -1.0).max(dim=2)          # (B,P)
            better = pos.any(dim=2) & (chunk_iou > best_iou)
            best_iou = torch.where(better, chunk_iou, best_iou)
            best_t = torch.where(better, t.gather(2, chunk_arg[..., None])[..., 0], best_t)
            gt_inds = torch.where(better, chunk_arg + sl.start, gt_inds)
        if self.target == "alignment":
            return self._finish(x, gt_inds, normalised_alignment(gt_inds, best_t, best_iou, g))
        return self._finish(x, gt_inds, best_iou)


def normalised_alignment(gt_inds: torch.Tensor, t: torch.Tensor, iou: torch.Tensor, g: int
                         ) -> torch.Tensor:
    """TOOD's soft target per prior: ``t / max t · max IoU``, both maxima over the final
    positives of the same gt (B, P); any value at background priors."""
    b = gt_inds.shape[0]
    pos = gt_inds >= 0
    flat = (torch.arange(b, device=gt_inds.device)[:, None] * g + gt_inds.clamp(min=0))
    flat = torch.where(pos, flat, b * g).reshape(-1)                 # background → spare slot
    zeros = t.new_zeros(b * g + 1)
    max_t = zeros.scatter_reduce(0, flat, t.reshape(-1), "amax")
    max_iou = zeros.scatter_reduce(0, flat, iou.clamp(min=0).reshape(-1), "amax")
    norm = t.reshape(-1) / max_t[flat].clamp(min=torch.finfo(t.dtype).tiny) * max_iou[flat]
    return norm.reshape(b, -1)
