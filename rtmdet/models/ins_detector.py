"""RTMDet-Ins: the RTMDet detector with the instance head, and its test-time ``predict``
(the test path itself is :func:`rtmdet.models.postprocess.ins_postprocess`)."""
from __future__ import annotations

import torch

from .cspnext import CSPNeXt
from .detector import RTMDet
from .ins_head import RTMDetInsHead
from .pafpn import CSPNeXtPAFPN
from .postprocess import ins_postprocess


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
                mask_thr: float = 0.5, fast: bool | None = None,
                dtype: str = "fp32") -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (K, 4) xyxy, ``scores``, ``labels`` sorted by score, ``masks``
        (K, H, W) bool over ``img_shape`` (default the input canvas), and
        ``mask_logits_lowres`` (K, H/8, W/8) for callers that map masks back through a
        letterbox (:func:`rtmdet.geometry.masks.logits_to_masks`). Defaults are the official Ins test
        settings. Switches to eval mode for the call and restores the previous mode; ``fast``
        and ``dtype`` as in :meth:`RTMDet.predict` (BN-folded channels-last copy by default on
        CPU; bf16 autocast forward, fp32 post-processing).
        """
        cls_scores, bbox_preds, kernel_preds, mask_feats = self.raw_for_inference(x, fast, dtype)
        shape = img_shape or (x.shape[-2], x.shape[-1])
        return ins_postprocess(cls_scores, bbox_preds, kernel_preds, mask_feats, self.strides,
                               shape, score_thr, nms_pre, iou_thr, max_per_img, mask_thr,
                               use_torchvision)
