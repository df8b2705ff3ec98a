"""Test-time post-processing of raw head outputs into detections (SPEC §4)."""
from __future__ import annotations

import torch

from rtmdet.geometry.boxes import batched_nms, distance2bbox, make_priors


def flatten_levels(maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-level ``(N, C, H, W)`` maps → ``(N, ΣHW, C)`` in prior order."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, m.shape[1]) for m in maps], 1)


def level_bounds(maps: list[torch.Tensor]) -> list[int]:
    """Start offsets of each level in the flattened prior order, plus the total."""
    return torch.tensor([0] + [m.shape[-2] * m.shape[-1] for m in maps]).cumsum(0).tolist()


def select_candidates(scores: torch.Tensor, bounds: list[int], score_thr: float, nms_pre: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multi-label candidates of one image: per level, the (prior, class) pairs of ``scores``
    (P, C) above ``score_thr``, best ``nms_pre`` of them. Returns prior indices (over all
    levels), scores and labels; shared by the detection, instance and rotated heads."""
    idx_l, score_l, label_l = [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        level = scores[lo:hi]
        valid = torch.nonzero(level > score_thr)                  # (k, 2): prior, class
        vals = level[valid[:, 0], valid[:, 1]]
        vals, order = torch.sort(vals, descending=True, stable=True)
        valid = valid[order[:nms_pre]]
        idx_l.append(valid[:, 0] + lo)
        score_l.append(vals[:nms_pre])
        label_l.append(valid[:, 1])
    return torch.cat(idx_l), torch.cat(score_l), torch.cat(label_l)


@torch.no_grad()
def postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                strides: tuple[int, ...], img_shape: tuple[int, int], score_thr: float = 0.001,
                nms_pre: int = 30000, iou_thr: float = 0.65, max_per_img: int = 300,
                use_torchvision: bool | None = None) -> list[dict[str, torch.Tensor]]:
    """Multi-label detections per image: per level keep (prior, class) pairs scoring above
    ``score_thr`` (top ``nms_pre`` per level), decode and clip to ``img_shape`` = (H, W), drop
    empty boxes, class-wise NMS, keep the ``max_per_img`` best.

    Returns one dict per image with ``boxes`` (K, 4), ``scores`` (K,), ``labels`` (K,) sorted by
    descending score.
    """
    sizes = [tuple(m.shape[-2:]) for m in cls_scores]
    priors, _ = make_priors(sizes, strides, cls_scores[0].device, bbox_preds[0].dtype)
    bounds = level_bounds(cls_scores)
    scores_all = flatten_levels(cls_scores).sigmoid()
    dists_all = flatten_levels(bbox_preds)
    results = []
    for img in range(scores_all.shape[0]):
        prior_idx, scores, labels = select_candidates(scores_all[img], bounds, score_thr, nms_pre)
        boxes = distance2bbox(priors[prior_idx], dists_all[img, prior_idx], img_shape)
        nonempty = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
        boxes, scores, labels = boxes[nonempty], scores[nonempty], labels[nonempty]
        keep = batched_nms(boxes, scores, labels, iou_thr, use_torchvision)[:max_per_img]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results
