"""OpenVINO as a stand-in for an onnxruntime session: our ONNX graph compiled by OpenVINO's CPU
plugin, fp32 or bf16 (issue 18).

Why a second CPU runtime: onnxruntime's CPU provider has no bf16 convolutions, and torch's
bf16 autocast still runs every op eagerly. OpenVINO compiles the whole graph (convolutions
with their BatchNorm, SiLU and adds fused, weights repacked for AVX-512 BF16 / AMX), so on a CPU
with native bf16 the same network runs ~2-3× faster than torch bf16 autocast
(``benchmarks/vs_official.py``). On a CPU without native bf16 the bf16 request becomes fp32
with one log line (:func:`rtmdet.models.precision.resolve_dtype`, checked by the callers).

The class mimics the part of ``onnxruntime.InferenceSession`` that
:class:`rtmdet.export.ort_detector.OrtDetector` and the latency runners use (``run(None,
feed)`` → list of arrays in graph-output order), so eval, predict and the benchmarks reuse the
onnxruntime code paths unchanged. OpenVINO is an optional extra (``pip install
'rtmdet-ablations[openvino]'``): it is imported only here, inside the constructor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rtmdet.utils.errors import UserError

PRECISION_HINT = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoError(UserError, RuntimeError):
    """OpenVINO missing, or asked for a precision it cannot run: one line for the user."""


class OpenVinoSession:
    """``onnx_path`` compiled for the CPU at ``dtype`` (fp32 | bf16), ``threads`` inference
    threads (0: OpenVINO's default), one stream tuned for latency."""

    def __init__(self, onnx_path: str | Path, threads: int = 0, dtype: str = "fp32") -> None:
        if dtype not in PRECISION_HINT:
            raise OpenVinoError(f"OpenVINO runs fp32 or bf16, not {dtype!r} (int8 is the "
                                "onnxruntime path)")
        try:
            import openvino as ov    # lazy: the optional 'openvino' extra
        except ImportError:
            raise OpenVinoError("OpenVINO is not installed (pip install "
                                "'rtmdet-ablations[openvino]')") from None
        core = ov.Core()
        caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if dtype == "bf16" and "BF16" not in caps:
            raise OpenVinoError("OpenVINO's CPU plugin reports no bf16 on this CPU "
                                f"(capabilities: {', '.join(caps)})")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISION_HINT[dtype],
                                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.path, self.dtype = Path(onnx_path), dtype
        self.compiled = core.compile_model(str(self.path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.version = ov.get_version()

    def run(self, output_names: list[str] | None, feed: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        """Outputs in graph order (``output_names`` must be None, as the callers pass). Copies:
        the request's output buffers are reused by the next call."""
        if output_names is not None:
            raise ValueError("OpenVinoSession.run returns every output; pass None")
        result = self.request.infer(feed)
        return [np.array(result[out]) for out in self.compiled.outputs]
