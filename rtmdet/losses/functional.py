"""Training losses of RTMDet (SPEC §6, §9): quality focal loss, GIoU loss, Dice loss.

Each returns the *unreduced* per-element loss already multiplied by the optional per-element
weight; the criterion sums and divides by its own normaliser (the batch sum of positive IoU
targets), which is why there is no ``reduction``/``avg_factor`` machinery here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def quality_focal_loss(logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
                       beta: float = 2.0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-prior QFL ``(N,)`` summed over classes.

    ``logits`` (N, C); ``labels`` (N,) the class of positive priors and −1 (or any value outside
    [0, C)) for background; ``scores`` (N,) the soft target (IoU of the prediction with its gt).
    Every (prior, class) entry is a negative ``BCE(p, 0)·σ(p)^β`` except the positive prior's
    own class, ``BCE(p, s)·|s − σ(p)|^β``: the classifier learns to predict localisation quality,
    which is what NMS ranks by. ``weight`` (N,) or (N, C) scales entries before the class sum.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1] or scores.shape != labels.shape:
        raise ValueError(f"quality_focal_loss: logits (N, C), labels and scores (N,) expected, "
                         f"got {tuple(logits.shape)}, {tuple(labels.shape)}, {tuple(scores.shape)}")
    num_classes = logits.shape[1]
    sig = logits.sigmoid()
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits),
                                              reduction="none") * sig.pow(beta)
    pos = (labels >= 0) & (labels < num_classes)
    if pos.any():
        idx = pos.nonzero().squeeze(1)
        cls = labels[idx].long()
        p = logits[idx, cls]
        s = scores[idx].to(logits.dtype)
        pos_loss = F.binary_cross_entropy_with_logits(p, s, reduction="none") \
            * (s - p.sigmoid()).abs().pow(beta)
        loss = loss.index_put((idx, cls), pos_loss)
    if weight is not None:
        loss = loss * (weight[:, None] if weight.dim() == 1 else weight)
    return loss.sum(dim=1)


def giou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised IoU of matching rows of two (N, 4) xyxy tensors; union and enclosing area
    are clamped ≥ eps so degenerate boxes give a finite gradient instead of NaN."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = (area_p + area_t - inter).clamp(min=eps)
    enc_wh = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])
              ).clamp(min=0)
    enclose = (enc_wh[:, 0] * enc_wh[:, 1]).clamp(min=eps)
    return inter / union - (enclose - union) / enclose


def giou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
              eps: float = 1e-6) -> torch.Tensor:
    """``(1 − GIoU)`` per box ``(N,)``, times ``weight`` (N,) if given (the IoU target in
    RTMDet, so well-localised positives steer the regression more)."""
    loss = 1 - giou(pred, target, eps)
    return loss if weight is None else loss * weight


def dice_loss(mask_logits: torch.Tensor, target: torch.Tensor, eps: float = 5e-6,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-instance Dice ``1 − 2Σpt / (Σp² + Σt² + 2·eps)`` with ``p = σ(logit)`` (N,).

    Squared sums (not plain sums) as in RTMDet-Ins; the eps on each sum only avoids 0/0 (an
    empty prediction against an empty target scores loss 1, as officially).
    """
    p = mask_logits.sigmoid().flatten(1)
    t = target.to(p.dtype).flatten(1)
    loss = 1 - 2 * (p * t).sum(1) / ((p * p).sum(1) + (t * t).sum(1) + 2 * eps)
    return loss if weight is None else loss * weight
