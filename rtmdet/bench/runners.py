"""Backend runners for the latency benchmark: one synchronous forward step per backend (torch,
onnxruntime, OpenVINO; TensorRT in :mod:`.tensorrt_backend`), and :class:`Unavailable`, the one-line reason
a backend cannot run here (the benchmark then falls back to the next best one)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

# model_hash moved to export/onnx.py (it keys cached ONNX graphs); re-exported for latency,
# paper_latency and the benchmarks
from rtmdet.export.onnx import model_hash  # noqa: F401
from rtmdet.models.fuse import fuse_model
from rtmdet.models.precision import autocast, to_float


class Unavailable(RuntimeError):
    """A backend/device that cannot run here; the message is the one-line reason."""


@dataclass
class Runner:
    step: Callable[[], Any]          # one synchronous forward pass
    backend: str
    device: str
    fp16: bool
    stream: Any = None               # CUDA stream the step runs on (for event timing)
    info: dict[str, Any] = field(default_factory=dict)
    dtype: str = "fp32"              # precision that ran: fp32 | bf16 (torch CPU) | int8 (ort)


def pin_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def torch_runner(model: nn.Module, x: torch.Tensor, device: str, fp16: bool,
                 fuse: bool = True, channels_last: bool = True, dtype: str = "fp32") -> Runner:
    """``fuse`` folds BatchNorm into the convs (as onnxruntime and TensorRT do in their graph
    optimisers, so the backends compare like for like); ``channels_last`` runs NHWC; ``dtype``
    ``bf16`` (already resolved, :func:`rtmdet.models.precision.resolve_dtype`) wraps the forward
    in CPU bf16 autocast and casts the outputs back to float32, as ``predict`` does."""
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("torch sees no CUDA GPU")
    if fp16 and device != "cuda":
        raise Unavailable("FP16 needs --device cuda")
    if fuse:
        model = fuse_model(model)
    model = model.to(device).eval()
    x = x.to(device)
    if fp16:
        model, x = model.half(), x.half()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> Any:
        with torch.inference_mode(), autocast(dtype):
            raw = model.forward_raw(x)
        return to_float(raw) if dtype != "fp32" else raw
    stream = torch.cuda.current_stream() if device == "cuda" else None
    return Runner(step, "torch", device, fp16, stream,
                  {"torch_fused_bn": fuse, "channels_last": channels_last}, dtype)


def ort_runner(onnx_path: Path, x: torch.Tensor, device: str, threads: int,
               dtype: str = "fp32") -> Runner:
    """``dtype`` only labels the result: an int8 graph is a different ``onnx_path``."""
    try:
        import onnxruntime as ort    # lazy: the optional 'onnx' extra
    except ImportError:
        raise Unavailable("onnxruntime is not installed") from None
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise Unavailable(f"onnxruntime has no {provider} (install onnxruntime-gpu)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), opts, providers=[provider])
    if device == "cuda":  # keep input and outputs on the GPU: forward only, no copies
        binding = sess.io_binding()
        binding.bind_ortvalue_input("images", ort.OrtValue.ortvalue_from_numpy(x.numpy(), "cuda", 0))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda")
        return Runner(lambda: sess.run_with_iobinding(binding), "onnxruntime", device, False,
                      dtype=dtype)
    feed = {"images": x.numpy()}
    return Runner(lambda: sess.run(None, feed), "onnxruntime", device, False, dtype=dtype)


def openvino_runner(onnx_path: Path, x: torch.Tensor, threads: int, dtype: str = "fp32") -> Runner:
    """Our ONNX graph compiled by OpenVINO's CPU plugin at ``dtype`` (fp32 | bf16, resolved)."""
    from rtmdet.export.openvino_session import OpenVinoError, OpenVinoSession
    try:
        sess = OpenVinoSession(onnx_path, threads, dtype)
    except OpenVinoError as e:
        raise Unavailable(str(e)) from None
    feed = {"images": x.numpy()}
    return Runner(lambda: sess.run(None, feed), "openvino", "cpu", False,
                  info={"openvino": sess.version}, dtype=dtype)
