"""int8 CPU inference (issue 18): onnxruntime *static* quantisation of our raw-output ONNX graph.

- **Static, QDQ, per-channel**: weights int8 with one scale per output channel (depthwise
  convs have very different ranges per channel, a per-tensor scale would crush the small
  ones), activations 8-bit with ranges fixed from a calibration set, written as
  QuantizeLinear/DequantizeLinear pairs that onnxruntime's graph optimiser fuses into int8
  kernels. Dynamic quantisation would re-measure activation ranges per call (slow for convs).
- **u8 activations x s8 weights** (U8S8): onnxruntime's x86 int8 kernels are u8 x s8 (VNNI
  ``vpdpbusd``). Measured on the 2-vCPU AVX-512 VNNI machine (another job loading both
  cores), RTMDet-tiny 320², 1 thread, interleaved in one process, median of 15: fp32 graph
  29.8 ms, S8S8 QDQ 58.3 ms (slower than fp32), U8S8 QDQ 15.8 ms, the same output correlation
  with fp32 (u8 and s8 with the same ranges are the same grid shifted by 128). On CPUs
  without VNNI the u8 x s8 products can saturate a 16-bit intermediate, so weights use 7 bits
  there (``reduce_range``, onnxruntime's advice); the choice is part of the cache key.
- **Calibration set**: ``n`` training images of the config's (embedded) data, spread evenly
  over the split, letterboxed and normalised exactly as the evaluator feeds the graph
  (:class:`rtmdet.data.loader.ValDataset` + :func:`rtmdet.data.preprocess.normalize`), so the
  measured ranges are those inference sees. Training images, never validation ones: a
  calibration set drawn from the evaluation split would leak into the AP it is judged by.
- **Head outputs stay fp32**: the last conv of each output (and the ``× stride`` that follows)
  is excluded from quantisation. An int8 output has 256 levels over its range: for box
  distances of up to a few hundred pixels that is a step of one or two pixels, enough to fail
  IoU ≥ 0.9 agreement, for a handful of small convs' worth of time.

The int8 graph's file name carries a hash of the fp32 graph, the calibration inputs and the
settings, so a cached graph is reused only when all three are the same.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtmdet.config import Config
from rtmdet.data.loader import ValDataset, build_source
from rtmdet.data.preprocess import normalize
from rtmdet.models.precision import vnni_support
from rtmdet.utils.io import atomic_write_bytes

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# element-wise ops between a head's last conv and the graph output (distances × stride)
_OUTPUT_TAIL_OPS = {"Mul", "Add", "Identity", "Relu", "Exp"}


def calibration_inputs(cfg: Config, n: int, size: int | None = None) -> list[np.ndarray]:
    """``n`` (1, 3, S, S) float32 inputs from the training split of ``cfg.data``, evenly spaced
    (deterministic), preprocessed like the evaluator's (letterbox, pad 114, normalise)."""
    if n < 1:
        raise ValueError(f"calibration images: need at least 1, got {n}")
    data = ValDataset(build_source(cfg, train=True), size or cfg.data.img_size)
    if not len(data):
        raise ValueError(f"{cfg.data.root}: the training split has no images to calibrate on")
    picks = np.unique(np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int))
    out = []
    for i in picks.tolist():
        img = data[i]["img"].unsqueeze(0).contiguous()
        out.append(normalize(img).numpy().astype(np.float32))
    return out


class CalibrationReader:
    """onnxruntime's ``CalibrationDataReader`` protocol over a list of inputs (``get_next``
    returns one feed dict, then ``None``; ``rewind`` starts over). Subclassing the onnxruntime
    class would import onnxruntime at module load; the protocol is all quantize_static uses."""

    def __init__(self, inputs: list[np.ndarray], input_name: str = "images") -> None:
        self.inputs, self.input_name, self._i = inputs, input_name, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.inputs):
            return None
        self._i += 1
        return {self.input_name: self.inputs[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0


def output_nodes(model: Any) -> list[str]:
    """Names of the nodes that compute each graph output: walking back from the output through
    element-wise tail ops (``_OUTPUT_TAIL_OPS``) down to and including the producing Conv."""
    producer = {o: node for node in model.graph.node for o in node.output}
    names: list[str] = []
    for out in model.graph.output:
        node = producer.get(out.name)
        while node is not None:
            if node.name not in names:
                names.append(node.name)
            if node.op_type not in _OUTPUT_TAIL_OPS:
                break                               # the conv (or whatever makes the output)
            # follow the non-constant input (the other one is the stride / bias initialiser)
            node = next((producer[i] for i in node.input if i in producer
                         and producer[i].op_type != "Constant"), None)
    return names


def int8_path_for(fp32_path: str | Path, inputs: list[np.ndarray], method: str,
                  keep_outputs_fp32: bool, reduce_range: bool = False) -> Path:
    """The cache path of the quantised graph: fp32 graph + calibration + settings hashed."""
    fp32_path = Path(fp32_path)
    h = hashlib.sha256(fp32_path.read_bytes())
    for x in inputs:
        h.update(np.ascontiguousarray(x).tobytes())
    h.update(f"{method}|{keep_outputs_fp32}|{reduce_range}|qdq-u8s8-per-channel".encode())
    return fp32_path.with_name(f"{fp32_path.stem}-int8-{h.hexdigest()[:12]}.onnx")


def quantize_onnx(fp32_path: str | Path, inputs: list[np.ndarray],
                  out_path: str | Path | None = None, method: str = "minmax",
                  keep_outputs_fp32: bool = True) -> Path:
    """Statically quantise ``fp32_path`` (QDQ, per-channel, int8 weights and activations)
    calibrated on ``inputs``; returns the int8 graph's path (cached, see :func:`int8_path_for`).
    """
    import onnx    # lazy: the optional 'onnx' extra
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r}: expected one of "
                         f"{', '.join(CALIBRATION_METHODS)}")
    if not inputs:
        raise ValueError("int8 quantisation needs at least one calibration input")
    reduce_range = not vnni_support()
    out = Path(out_path) if out_path else int8_path_for(fp32_path, inputs, method,
                                                        keep_outputs_fp32, reduce_range)
    if out.exists():
        return out
    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix="rtmdet-int8-") as tmp:
        pre, q = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        # shape inference + graph clean-up first: what onnxruntime recommends before
        # quantising, so that ranges are collected on the graph that will be quantised
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        exclude = output_nodes(onnx.load(str(pre))) if keep_outputs_fp32 else []
        quantize_static(str(pre), str(q), CalibrationReader(inputs),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        reduce_range=reduce_range,
                        calibrate_method=calib, nodes_to_exclude=exclude,
                        extra_options={"CalibTensorRangeSymmetric": False})
        atomic_write_bytes(out, q.read_bytes())
    return out


def random_inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> list[np.ndarray]:
    """Gaussian stand-ins for calibration when only latency matters (int8 kernels do not
    depend on the values); never for accuracy."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g).numpy() for _ in range(n)]

