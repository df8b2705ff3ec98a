"""A detector whose forward is an onnxruntime session (issue 18: the int8 graph) or an OpenVINO
one (:mod:`.openvino_session`: fp32/bf16), with the same
``predict`` as :class:`rtmdet.models.detector.RTMDet`, so ``rtmdet eval``/``predict`` and the
precision benchmark measure int8 through the very evaluator and post-processing fp32 uses.

Only the forward differs: the session returns the raw per-level maps (float32: the quantised
graph keeps its outputs fp32, :mod:`.quantize`), and :func:`rtmdet.models.postprocess.postprocess`
turns them into detections exactly as for torch. The graph has a fixed input side (the one it
was exported and calibrated at) and a dynamic batch (the evaluator's last batch is shorter).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rtmdet.config import Config
from rtmdet.models.postprocess import detections_from_raw
from rtmdet.models.precision import DtypeError, vnni_support

from .onnx import export_onnx, model_hash
from .openvino_session import OpenVinoSession
from .parity import ort_session
from .quantize import calibration_inputs, quantize_onnx


class OrtDetector(nn.Module):
    """``predict`` / ``raw`` over an ONNX raw-output graph run by onnxruntime on the CPU.

    An ``nn.Module`` without parameters so that callers written for torch models
    (``model.eval().to(device)``) work unchanged; ``info`` records what graph it runs."""

    def __init__(self, onnx_path: str | Path, strides: tuple[int, ...], size: int,
                 model_type: str = "det", threads: int = 0,
                 info: dict[str, Any] | None = None, session: Any = None) -> None:
        super().__init__()
        if model_type != "det":
            raise ValueError(f"onnxruntime detector: model.type {model_type!r} is not supported "
                             "(int8 inference covers detection models)")
        self.onnx_path, self.strides, self.size = Path(onnx_path), tuple(strides), size
        self.model_type = model_type
        self.session = session if session is not None else ort_session(self.onnx_path, threads)
        self.info = dict(info or {})

    def raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The flattened raw outputs (``cls_score_s8`` … ``bbox_pred_s32``) as float32 tensors."""
        if tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"{self.onnx_path.name}: input {tuple(x.shape[-2:])}, the graph "
                             f"was exported for {self.size}x{self.size}")
        feed = {"images": np.ascontiguousarray(x.detach().cpu().float().numpy())}
        return [torch.from_numpy(np.asarray(o)).float() for o in self.session.run(None, feed)]

    @torch.no_grad()
    def predict(self, x: torch.Tensor, score_thr: float = 0.001, iou_thr: float = 0.65,
                max_per_img: int = 300, nms_pre: int = 30000,
                img_shape: tuple[int, int] | None = None, **_: Any
                ) -> list[dict[str, torch.Tensor]]:
        """As :meth:`rtmdet.models.detector.RTMDet.predict` (torch-only options are ignored)."""
        shape = img_shape or (x.shape[-2], x.shape[-1])
        return detections_from_raw(self.model_type, self.raw(x), self.strides, shape,
                                   score_thr, nms_pre, iou_thr, max_per_img)


def fp32_graph(model: nn.Module, cfg: Config, size: int, cache_dir: str | Path) -> Path:
    """``model``'s fp32 raw-output graph (dynamic batch, input side ``size``), cached in
    ``cache_dir`` under the weights' hash: what int8 quantises and OpenVINO compiles."""
    fp32 = Path(cache_dir) / f"{cfg.name}-{size}-dyn-{model_hash(model, f'{size}|dynamic')}.onnx"
    if not fp32.exists():
        export_onnx(model, fp32, size, dynamic_batch=True, model_type=cfg.model.type)
    return fp32


def openvino_detector(model: nn.Module, cfg: Config, size: int, dtype: str,
                      cache_dir: str | Path, threads: int = 0) -> OrtDetector:
    """``model`` exported (fp32 graph) and compiled by OpenVINO at ``dtype`` (fp32 | bf16,
    already resolved against this CPU)."""
    if cfg.model.type != "det":
        raise DtypeError(f"--engine openvino: model.type {cfg.model.type!r} is not supported "
                         "(detection models only)")
    model = model.eval().float().cpu()
    fp32 = fp32_graph(model, cfg, size, cache_dir)
    session = OpenVinoSession(fp32, threads, dtype)
    return OrtDetector(fp32, model.strides, size, cfg.model.type, threads,
                       {"engine": "openvino", "openvino": session.version, "dtype": dtype,
                        "onnx_fp32": str(fp32)}, session=session)


def int8_detector(model: nn.Module, cfg: Config, size: int, calib_images: int,
                  cache_dir: str | Path, method: str = "minmax", threads: int = 0,
                  keep_outputs_fp32: bool = True) -> OrtDetector:
    """``model`` exported (fp32, dynamic batch, input side ``size``), statically quantised on
    ``calib_images`` training images of ``cfg.data`` and loaded in onnxruntime. Both graphs are
    cached in ``cache_dir`` under content hashes (weights; fp32 graph + calibration)."""
    if cfg.model.type != "det":      # before the export and calibration, not after them
        raise DtypeError(f"--dtype int8: model.type {cfg.model.type!r} is not supported "
                         "(detection models only)")
    model = model.eval().float().cpu()
    fp32 = fp32_graph(model, cfg, size, cache_dir)
    inputs = calibration_inputs(cfg, calib_images, size)
    int8 = quantize_onnx(fp32, inputs, method=method, keep_outputs_fp32=keep_outputs_fp32)
    return OrtDetector(int8, model.strides, size, cfg.model.type, threads,
                       {"dtype": "int8", "onnx_fp32": str(fp32), "onnx_int8": str(int8),
                        "calibration": {"images": len(inputs), "split": "train",
                                        "method": method},
                        "scheme": "QDQ, u8 activations, s8 per-channel weights",
                        "reduce_range": not vnni_support(), "outputs_fp32": keep_outputs_fp32})
