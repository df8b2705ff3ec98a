"""RTMDet-Ins: the RTMDet detector with the instance head, and its test-time ``predict``.

Test path (official RTMDet-Ins): per level keep (prior, class) pairs above ``score_thr``, top
``nms_pre``; decode boxes clipped to the image; drop empty boxes; class-wise NMS; keep
``max_per_img``; only then run the dynamic mask networks of the survivors (masks are the
expensive part, so they are computed for at most ``max_per_img`` instances), upsample the
logits ×8 to the input and threshold their sigmoid at ``mask_thr``.
"""
from __future__ import annotations

import torch

from rtmdet.geometry.boxes import batched_nms, distance2bbox, make_priors
from rtmdet.geometry.masks import dynamic_mask_logits, logits_to_masks
from .postprocess import flatten_levels, level_bounds, select_candidates
from .cspnext import CSPNeXt
from .detector import RTMDet
from .ins_head import RTMDetInsHead
from .pafpn import CSPNeXtPAFPN


class RTMDetIns(RTMDet):
    """``forward_raw(x)`` → ``(cls_scores, bbox_preds, kernel_preds, mask_feats)``."""

    def __init__(self, backbone: CSPNeXt, neck: CSPNeXtPAFPN, head: RTMDetInsHead) -> None:
        super().__init__(backbone, neck, head)

    def forward_raw(self, x: torch.Tensor):  # type: ignore[override]
        """Per-level logits (N, C, H/s, W/s), distances in pixels (N, 4, H/s, W/s), kernels
        (N, 169, H/s, W/s), and prototypes (N, 8, H/8, W/8)."""
        return self.head(self.extract_feats(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, score_thr: float = 0.05, iou_thr: float = 0.6,
                max_per_img: int = 100, nms_pre: int = 1000,
                img_shape: tuple[int, int] | None = None, use_torchvision: bool | None = None,
                mask_thr: float = 0.5, fast: bool | None = None) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (K, 4) xyxy, ``scores``, ``labels`` sorted by score, ``masks``
        (K, H, W) bool over ``img_shape`` (default the input canvas), and
        ``mask_logits_lowres`` (K, H/8, W/8) for callers that map masks back through a
        letterbox (:func:`rtmdet.geometry.masks.logits_to_masks`). Defaults are the official Ins test
        settings. Switches to eval mode for the call and restores the previous mode; ``fast``
        as in :meth:`RTMDet.predict` (BN-folded channels-last copy by default on CPU).
        """
        cls_scores, bbox_preds, kernel_preds, mask_feats = self.raw_for_inference(x, fast)
        shape = img_shape or (x.shape[-2], x.shape[-1])
        return ins_postprocess(cls_scores, bbox_preds, kernel_preds, mask_feats, self.strides,
                               shape, score_thr, nms_pre, iou_thr, max_per_img, mask_thr,
                               use_torchvision)


@torch.no_grad()
def ins_postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                    kernel_preds: list[torch.Tensor], mask_feats: torch.Tensor,
                    strides: tuple[int, ...], img_shape: tuple[int, int],
                    score_thr: float = 0.05, nms_pre: int = 1000, iou_thr: float = 0.6,
                    max_per_img: int = 100, mask_thr: float = 0.5,
                    use_torchvision: bool | None = None) -> list[dict[str, torch.Tensor]]:
    """Raw Ins head outputs → per-image detections with masks (see module docstring)."""
    sizes = [tuple(m.shape[-2:]) for m in cls_scores]
    points, point_strides = make_priors(sizes, strides, cls_scores[0].device, bbox_preds[0].dtype)
    level_ranges = level_bounds(cls_scores)
    scores_all = flatten_levels(cls_scores).sigmoid()
    dists_all = flatten_levels(bbox_preds)
    kernels_all = flatten_levels(kernel_preds)
    mask_stride = strides[0]
    results = []
    for img in range(scores_all.shape[0]):
        prior_idx, scores, labels = select_candidates(scores_all[img], level_ranges,
                                                       score_thr, nms_pre)
        boxes = distance2bbox(points[prior_idx], dists_all[img, prior_idx], img_shape)
        nonempty = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
        boxes, scores, labels = boxes[nonempty], scores[nonempty], labels[nonempty]
        prior_idx = prior_idx[nonempty]
        keep = batched_nms(boxes, scores, labels, iou_thr, use_torchvision)[:max_per_img]
        prior_idx = prior_idx[keep]
        logits = dynamic_mask_logits(mask_feats[img], kernels_all[img, prior_idx],
                                     points[prior_idx], point_strides[prior_idx], mask_stride)
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep],
                        "masks": logits_to_masks(logits, mask_stride, img_shape, mask_thr),
                        "mask_logits_lowres": logits})
    return results
