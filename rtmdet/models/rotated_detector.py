"""RTMDet-R: backbone → neck → rotated head, its test path, and initialisation from a
detection checkpoint (SPEC §10)."""
from __future__ import annotations

from typing import Any

import torch

from rtmdet.geometry.boxes import make_priors
from .postprocess import flatten_levels, level_bounds, select_candidates
from rtmdet.geometry.rotated import batched_rotated_nms
from .cspnext import CSPNeXt
from .detector import RTMDet
from .pafpn import CSPNeXtPAFPN
from .rotated_head import RotatedRTMDetHead, distance2rbox


class RotatedRTMDet(RTMDet):
    """Same backbone/neck/forward contract as :class:`RTMDet`; ``forward_raw`` adds the
    per-level angle maps and ``predict`` returns rotated boxes."""

    def __init__(self, backbone: CSPNeXt, neck: CSPNeXtPAFPN, head: RotatedRTMDetHead) -> None:
        super().__init__(backbone, neck, head)

    def forward_raw(self, x: torch.Tensor
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per-level ``cls_scores`` (N, C, h, w) logits, ``bbox_preds`` (N, 4, h, w) distances in
        pixels and ``angle_preds`` (N, 1, h, w) radians."""
        return self.head(self.extract_feats(x))

    def forward(self, x: torch.Tensor
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        return self.forward_raw(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, score_thr: float = 0.05, iou_thr: float = 0.1,
                max_per_img: int = 2000, nms_pre: int = 2000, min_size: float | None = 0.0,
                fast: bool | None = None, **_: Any) -> list[dict[str, torch.Tensor]]:
        """Rotated detections per image: dict of ``rboxes`` (K, 5) ``(cx, cy, w, h, θ)`` in
        input pixels, ``scores`` (K,), ``labels`` (K,). Defaults are the official DOTA test
        settings. Switches to eval mode for the call and restores the previous mode; ``fast``
        as in :meth:`RTMDet.predict` (BN-folded channels-last copy by default on CPU)."""
        raw = self.raw_for_inference(x, fast)
        return rotated_postprocess(*raw, self.strides, score_thr, nms_pre, iou_thr,
                                   max_per_img, min_size)


@torch.no_grad()
def rotated_postprocess(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                        angle_preds: list[torch.Tensor], strides: tuple[int, ...],
                        score_thr: float = 0.05, nms_pre: int = 2000, iou_thr: float = 0.1,
                        max_per_img: int = 2000, min_size: float | None = 0.0
                        ) -> list[dict[str, torch.Tensor]]:
    """Multi-label: per level keep (prior, class) pairs scoring above ``score_thr`` (best
    ``nms_pre`` per level), decode, drop boxes with w or h ≤ ``min_size`` (``None``: keep all),
    class-wise rotated NMS, keep the ``max_per_img`` best. Sorted by descending score."""
    sizes = [tuple(m.shape[-2:]) for m in cls_scores]
    priors, _ = make_priors(sizes, strides, cls_scores[0].device, bbox_preds[0].dtype)
    bounds = level_bounds(cls_scores)
    scores_all = flatten_levels(cls_scores).sigmoid()
    dists_all = flatten_levels(bbox_preds)
    angles_all = flatten_levels(angle_preds)[..., 0]
    results = []
    for img in range(scores_all.shape[0]):
        idx, scores, labels = select_candidates(scores_all[img], bounds, score_thr, nms_pre)
        boxes = distance2rbox(priors[idx], dists_all[img, idx], angles_all[img, idx])
        if min_size is not None:
            ok = (boxes[:, 2] > min_size) & (boxes[:, 3] > min_size)
            boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
        keep = batched_rotated_nms(boxes, scores, labels, iou_thr)[:max_per_img]
        results.append({"rboxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


def init_from_detector(model: RotatedRTMDet, state_dict: dict[str, Any]) -> dict[str, list[str]]:
    """Initialise RTMDet-R from an RTMDet detection checkpoint of the same size: ours
    (``head.``, ``backbone.stages.``) or official mmdet (``bbox_head.``, ``backbone.stageN.``),
    bare or under ``state_dict``.

    Every tensor whose name and shape match is copied (backbone, neck, towers, distance convs,
    and the classifier when the class counts agree); the rest keep their fresh initialisation.
    Returns ``{"loaded", "new", "unused"}`` lists of key names (ours for the first two, the
    checkpoint's for the last) so the caller can log exactly what was transferred.
    """
    from .weights import _map_key, unwrap_state_dict

    sd = unwrap_state_dict(state_dict)
    official = any(k.startswith("bbox_head.") or k.startswith("backbone.stage1.") for k in sd)
    ours = model.state_dict(keep_vars=True)
    loaded: dict[str, torch.Tensor] = {}
    unused = []
    for key, value in sd.items():
        new = _map_key(key, model) if official else key
        if new is not None and new in ours and tuple(ours[new].shape) == tuple(value.shape):
            loaded[new] = value
        else:
            unused.append(key)
    missing = [k for k in ours if k.startswith(("backbone.", "neck.")) and k not in loaded]
    if missing:
        raise ValueError(f"{len(missing)} backbone/neck tensor(s) not in the checkpoint or of "
                         f"another shape (e.g. {missing[0]}): not an RTMDet of the same size?")
    with torch.no_grad():
        for k, v in loaded.items():
            ours[k].copy_(v)
    return {"loaded": sorted(loaded), "new": sorted(k for k in ours if k not in loaded),
            "unused": sorted(unused)}
