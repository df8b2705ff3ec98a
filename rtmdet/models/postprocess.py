"""Test-time post-processing of raw head outputs into detections, for every model type (SPEC §4).

One prologue serves the detection, instance and rotated heads (:func:`candidates`): prior points,
sigmoid scores in prior order and, per image and level, the (prior, class) pairs scoring above
``score_thr``, best ``nms_pre`` of them (multi-label, as the official test path). Each model type
then decodes its own boxes and runs class-wise NMS:

- :func:`postprocess` (RTMDet): boxes clipped to the image, empty ones dropped;
- :func:`ins_postprocess` (RTMDet-Ins): the same, then the dynamic mask networks of the
  survivors only (masks are the expensive part, so at most ``max_per_img`` are computed),
  logits upsampled ×8 to the input and their sigmoid thresholded at ``mask_thr``;
- :func:`rotated_postprocess` (RTMDet-R): rotated boxes, rotated NMS;
- :func:`finish_detections`: the out-of-graph tail of an ONNX graph exported
  ``--with-postprocess`` (threshold + NMS + top-N on its in-graph candidates).
"""
from __future__ import annotations

import torch

from rtmdet.geometry.boxes import batched_nms, distance2bbox, make_priors
from rtmdet.geometry.masks import dynamic_mask_logits, logits_to_masks
from rtmdet.geometry.rotated import distance2rbox
from rtmdet.geometry.rotated_nms import batched_rotated_nms

Detections = list[dict[str, torch.Tensor]]


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
    levels), scores and labels."""
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


def candidates(cls_scores: list[torch.Tensor], strides: tuple[int, ...], dtype: torch.dtype,
               score_thr: float, nms_pre: int):
    """The shared prologue: ``(points (P, 2), point strides (P,), per-image list of
    (prior indices, scores, labels))`` for per-level logits ``cls_scores``."""
    sizes = [tuple(m.shape[-2:]) for m in cls_scores]
    points, point_strides = make_priors(sizes, strides, cls_scores[0].device, dtype)
    bounds = level_bounds(cls_scores)
    scores_all = flatten_levels(cls_scores).sigmoid()
    per_image = [select_candidates(s, bounds, score_thr, nms_pre) for s in scores_all]
    return points, point_strides, per_image


def _nonempty(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)


@torch.no_grad()
def postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                strides: tuple[int, ...], img_shape: tuple[int, int], score_thr: float = 0.001,
                nms_pre: int = 30000, iou_thr: float = 0.65, max_per_img: int = 300,
                use_torchvision: bool | None = None) -> Detections:
    """Multi-label detections per image: candidates (see :func:`candidates`), decode and clip to
    ``img_shape`` = (H, W), drop empty boxes, class-wise NMS, keep the ``max_per_img`` best.

    Returns one dict per image with ``boxes`` (K, 4), ``scores`` (K,), ``labels`` (K,) sorted by
    descending score.
    """
    points, _, per_image = candidates(cls_scores, strides, bbox_preds[0].dtype, score_thr, nms_pre)
    dists_all = flatten_levels(bbox_preds)
    results = []
    for img, (prior_idx, scores, labels) in enumerate(per_image):
        boxes = distance2bbox(points[prior_idx], dists_all[img, prior_idx], img_shape)
        ok = _nonempty(boxes)
        boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
        keep = batched_nms(boxes, scores, labels, iou_thr, use_torchvision)[:max_per_img]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


@torch.no_grad()
def ins_postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                    kernel_preds: list[torch.Tensor], mask_feats: torch.Tensor,
                    strides: tuple[int, ...], img_shape: tuple[int, int],
                    score_thr: float = 0.05, nms_pre: int = 1000, iou_thr: float = 0.6,
                    max_per_img: int = 100, mask_thr: float = 0.5,
                    use_torchvision: bool | None = None) -> Detections:
    """Raw Ins head outputs → per-image detections as :func:`postprocess`, plus ``masks``
    (K, H, W) bool over ``img_shape`` and ``mask_logits_lowres`` (K, H/8, W/8)."""
    points, point_strides, per_image = candidates(cls_scores, strides, bbox_preds[0].dtype,
                                                  score_thr, nms_pre)
    dists_all = flatten_levels(bbox_preds)
    kernels_all = flatten_levels(kernel_preds)
    mask_stride = strides[0]
    results = []
    for img, (prior_idx, scores, labels) in enumerate(per_image):
        boxes = distance2bbox(points[prior_idx], dists_all[img, prior_idx], img_shape)
        ok = _nonempty(boxes)
        boxes, scores, labels, prior_idx = boxes[ok], scores[ok], labels[ok], prior_idx[ok]
        keep = batched_nms(boxes, scores, labels, iou_thr, use_torchvision)[:max_per_img]
        prior_idx = prior_idx[keep]
        logits = dynamic_mask_logits(mask_feats[img], kernels_all[img, prior_idx],
                                     points[prior_idx], point_strides[prior_idx], mask_stride)
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep],
                        "masks": logits_to_masks(logits, mask_stride, img_shape, mask_thr),
                        "mask_logits_lowres": logits})
    return results


@torch.no_grad()
def rotated_postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                        angle_preds: list[torch.Tensor], strides: tuple[int, ...],
                        score_thr: float = 0.05, nms_pre: int = 2000, iou_thr: float = 0.1,
                        max_per_img: int = 2000, min_size: float | None = 0.0) -> Detections:
    """Candidates, rotated decode, drop boxes with w or h ≤ ``min_size`` (``None``: keep all),
    class-wise rotated NMS, keep the ``max_per_img`` best: ``rboxes`` (K, 5) ``(cx, cy, w, h,
    θ)``, ``scores``, ``labels``, sorted by descending score. No clipping (rotated boxes may
    legitimately leave the canvas)."""
    points, _, per_image = candidates(cls_scores, strides, bbox_preds[0].dtype, score_thr, nms_pre)
    dists_all = flatten_levels(bbox_preds)
    angles_all = flatten_levels(angle_preds)[..., 0]
    results = []
    for img, (idx, scores, labels) in enumerate(per_image):
        boxes = distance2rbox(points[idx], dists_all[img, idx], angles_all[img, idx])
        if min_size is not None:
            ok = (boxes[:, 2] > min_size) & (boxes[:, 3] > min_size)
            boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
        keep = batched_rotated_nms(boxes, scores, labels, iou_thr)[:max_per_img]
        results.append({"rboxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


def finish_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                      score_thr: float = 0.001, iou_thr: float = 0.65, max_per_img: int = 300
                      ) -> Detections:
    """The out-of-graph tail for ``--with-postprocess`` ONNX outputs (per-level top-k candidates
    already decoded in-graph): threshold, drop empty boxes, class-wise NMS, keep the best
    ``max_per_img`` — the same rules as :func:`postprocess`."""
    results = []
    for b, s, l in zip(boxes, scores, labels):
        keep = (s > score_thr) & _nonempty(b)
        b, s, l = b[keep], s[keep], l[keep].long()
        order = torch.sort(s, descending=True, stable=True).indices
        b, s, l = b[order], s[order], l[order]
        k = batched_nms(b, s, l, iou_thr)[:max_per_img]
        results.append({"boxes": b[k], "scores": s[k], "labels": l[k]})
    return results


def detections_from_raw(model_type: str, outs: list[torch.Tensor], strides: tuple[int, ...],
                        img_shape: tuple[int, int], score_thr: float, nms_pre: int,
                        iou_thr: float, max_per_img: int) -> Detections:
    """Post-processing of *flattened* raw outputs (one tensor per group and level, as exported
    graphs return them) for ``model_type``; rotated boxes come under ``boxes`` too, so one
    comparison serves every model type."""
    n = len(strides)
    lv = [outs[i * n:(i + 1) * n] for i in range(len(outs) // n)]
    if model_type == "ins":
        return ins_postprocess(lv[0], lv[1], lv[2], outs[3 * n], strides, img_shape, score_thr,
                               nms_pre, iou_thr, max_per_img)
    if model_type == "rotated":
        dets = rotated_postprocess(lv[0], lv[1], lv[2], strides, score_thr, nms_pre, iou_thr,
                                   max_per_img)
        return [{"boxes": d["rboxes"], "scores": d["scores"], "labels": d["labels"]}
                for d in dets]
    return postprocess(lv[0], lv[1], strides, img_shape, score_thr, nms_pre, iou_thr,
                       max_per_img)
