"""The RTMDet detector: backbone → neck → head, plus the test-time ``predict`` path."""
from __future__ import annotations

import torch
from torch import nn

from .cspnext import CSPNeXt
from .fuse import fast_inference_model
from .head import RTMDetHead
from .init import init_official
from .pafpn import CSPNeXtPAFPN
from .postprocess import postprocess
from .precision import TORCH_DTYPES, autocast, check_dtype, to_float


class RTMDet(nn.Module):
    """Input: a preprocessed batch ``(N, 3, H, W)`` (BGR, normalised, H and W multiples of 32;
    see :func:`rtmdet.preprocess`). ``forward`` is ``forward_raw`` so that exported graphs are
    the forward pass only, as the paper's latency protocol measures."""

    def __init__(self, backbone: CSPNeXt, neck: CSPNeXtPAFPN, head: RTMDetHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def init_weights(self, backbone_init: str = "cspnext_default", seed: int | None = None) -> None:
        """The official initialisation; every rule and its reason: :mod:`rtmdet.models.init`
        (``seed``: one stream per component, for paired ablations)."""
        init_official(self, backbone_init, seed)

    @property
    def strides(self) -> tuple[int, ...]:
        return self.head.strides

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def extract_feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.backbone(x))

    def forward_raw(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-level ``cls_scores`` (N, C, H/s, W/s) logits and ``bbox_preds`` (N, 4, H/s, W/s)
        distances in pixels (already × stride)."""
        return self.head(self.extract_feats(x))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.forward_raw(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, score_thr: float = 0.001, iou_thr: float = 0.65,
                max_per_img: int = 300, nms_pre: int = 30000,
                img_shape: tuple[int, int] | None = None,
                use_torchvision: bool | None = None, fast: bool | None = None,
                dtype: str = "fp32") -> list[dict[str, torch.Tensor]]:
        """Detections per image (dict of ``boxes`` xyxy in input pixels, ``scores``, ``labels``).

        Defaults are the paper's main-table test settings; the ablations used
        ``score_thr=0.05, max_per_img=100``. Boxes are clipped to ``img_shape`` (default: the
        input canvas). Switches to eval mode for the call and restores the previous mode.

        ``fast`` (default: on for a float32 CPU model already in eval mode) runs a cached
        BN-folded, channels-last copy (:func:`rtmdet.models.fuse.fast_inference_model`): ~20 % less
        CPU latency, same detections up to float32 rounding. The copy is rebuilt whenever a
        parameter or buffer changed (version counters), so training between calls is safe.

        ``dtype`` ``"bf16"`` runs the forward under CPU bf16 autocast; decoding, thresholds and
        NMS stay fp32 (:mod:`rtmdet.models.precision`; resolve an unsupported CPU to ``"fp32"``
        first with :func:`rtmdet.models.precision.resolve_dtype`).
        """
        cls_scores, bbox_preds = self.raw_for_inference(x, fast, dtype)
        return postprocess(cls_scores, bbox_preds, self.strides,
                           img_shape or (x.shape[-2], x.shape[-1]), score_thr, nms_pre,
                           iou_thr, max_per_img, use_torchvision)

    def raw_for_inference(self, x: torch.Tensor, fast: bool | None = None, dtype: str = "fp32"):
        """``forward_raw`` in eval mode (the previous mode is restored), through the cached
        BN-folded channels-last copy when :meth:`_use_fast_path` says so. Shared by the
        detection, Ins and R ``predict`` so every head gets the same fast path and the same
        precision handling: ``dtype`` ``"bf16"`` wraps only the forward in CPU autocast and
        returns the outputs as float32 (:func:`rtmdet.models.precision.to_float` says why)."""
        check_dtype(dtype, TORCH_DTYPES, "dtype")
        with autocast(dtype):
            raw = self._forward_for_inference(x, fast)
        return to_float(raw) if dtype != "fp32" else raw

    def _forward_for_inference(self, x: torch.Tensor, fast: bool | None):
        if self._use_fast_path(fast):
            try:
                fused = fast_inference_model(self)
            except RuntimeError:  # inference-mode tensors carry no version counter
                fused = None
            if fused is not None:
                return fused.forward_raw(x.contiguous(memory_format=torch.channels_last))
        was_training = self.training
        self.eval()
        try:
            return self.forward_raw(x)
        finally:
            self.train(was_training)

    def _use_fast_path(self, fast: bool | None) -> bool:
        """Default: eval mode, float32, CPU, where oneDNN gains from folding and NHWC (CUDA and
        float64 keep the plain model). ``fast=True`` forces it, ``False`` disables it."""
        if fast is not None:
            return fast
        p = next(self.parameters(), None)
        return (not self.training and p is not None and p.device.type == "cpu"
                and p.dtype == torch.float32)
