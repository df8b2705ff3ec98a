"""RTMDet-R: backbone → neck → rotated head and its ``predict`` (SPEC §10; the test path is
:func:`rtmdet.models.postprocess.rotated_postprocess`, initialisation from a detection
checkpoint :func:`rtmdet.models.weights.init_from_detector`)."""
from __future__ import annotations

from typing import Any

import torch

from .cspnext import CSPNeXt
from .detector import RTMDet
from .pafpn import CSPNeXtPAFPN
from .postprocess import rotated_postprocess
from .rotated_head import RotatedRTMDetHead


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
                fast: bool | None = None, dtype: str = "fp32",
                **_: Any) -> list[dict[str, torch.Tensor]]:
        """Rotated detections per image: dict of ``rboxes`` (K, 5) ``(cx, cy, w, h, θ)`` in
        input pixels, ``scores`` (K,), ``labels`` (K,). Defaults are the official DOTA test
        settings. Switches to eval mode for the call and restores the previous mode; ``fast``
        and ``dtype``
        as in :meth:`RTMDet.predict` (BN-folded channels-last copy by default on CPU)."""
        raw = self.raw_for_inference(x, fast, dtype)
        return rotated_postprocess(*raw, self.strides, score_thr, nms_pre, iou_thr,
                                   max_per_img, min_size)
