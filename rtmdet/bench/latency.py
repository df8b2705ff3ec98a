"""``rtmdet bench latency``: forward-pass latency in the paper's protocol (SPEC §11).
(``rtmdet bench data``, the cached vs uncached data pipeline, is :mod:`rtmdet.bench.data_throughput`.)

Forward only (no pre-processing, no NMS), a fixed input, warm-up runs discarded, then the
median and 90th percentile of ``runs`` timed calls. Threads are pinned (torch intra-op,
onnxruntime intra-op) and reported, because on a shared CPU the thread count changes latency
more than most ablations do. The JSON result carries the environment (``rtmdet.utils.envinfo``) and
the model's params/FLOPs, so the latency column of a table can always be traced to a machine.

Backends: ``torch`` (CPU or CUDA, optional FP16 on CUDA), ``onnxruntime`` (CPU, or CUDA with
I/O bound on the device), ``tensorrt`` (FP16 engine built from our ONNX with the TensorRT Python
API, cached by model hash, timed with CUDA events; see :mod:`rtmdet.bench.tensorrt_backend`, which
imports TensorRT only when asked for, since it is an optional extra). An unavailable backend or device prints
one line and falls back to the best available one; the result records both what was asked for
and what ran.

Precision (``dtype``, :mod:`rtmdet.models.precision`): ``bf16`` is the torch CPU forward under
bf16 autocast (fp32 with one log line where the CPU has no native bf16), ``int8`` the
onnxruntime CPU backend on the statically quantised graph (:mod:`rtmdet.export.quantize`),
calibrated on the given inputs or, for latency alone, on Gaussian stand-ins (recorded);
``openvino`` runs the same ONNX graph compiled by OpenVINO at fp32 or bf16
(:mod:`rtmdet.export.openvino_session`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rtmdet.export.onnx import export_onnx
from rtmdet.export.quantize import quantize_onnx, random_inputs
from rtmdet.models.precision import check_backend, resolve_dtype
from rtmdet.utils import envinfo

from .complexity import complexity
from .runners import (Runner, Unavailable, model_hash, openvino_runner, ort_runner, pin_threads,
                      torch_runner)
from .tensorrt_backend import trt_runner

BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")


# ----------------------------------------------------------------------------- timing
def time_runner(runner: Runner, runs: int, warmup: int) -> list[float]:
    """Milliseconds per call: CUDA events on the runner's stream on GPU, else wall clock."""
    for _ in range(warmup):
        runner.step()
    times = []
    if runner.device == "cuda":
        stream = runner.stream or torch.cuda.current_stream()
        torch.cuda.synchronize()
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            runner.step()
            end.record(stream)
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            runner.step()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def summarize(times_ms: list[float]) -> dict[str, Any]:
    t = np.asarray(times_ms)
    return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "mean_ms": float(t.mean()), "min_ms": float(t.min()), "max_ms": float(t.max()),
            "runs": len(t), "all_ms": [round(float(v), 4) for v in t]}


def _candidates(backend: str, device: str, fp16: bool) -> list[tuple[str, str, bool]]:
    """Requested (backend, device, fp16) first, then the best available alternatives."""
    cands = [(backend, device, fp16)]
    if torch.cuda.is_available():
        cands += [("tensorrt", "cuda", True), ("torch", "cuda", fp16)]
    if backend != "tensorrt":
        cands.append((backend, "cpu", False))
    cands += [("onnxruntime", "cpu", False), ("torch", "cpu", False)]
    out: list[tuple[str, str, bool]] = []
    for c in cands:
        if c not in out:
            out.append(c)
    return out


def make_runner(model: nn.Module, x: torch.Tensor, backend: str, device: str, fp16: bool,
                threads: int, work_dir: Path, tag: str, fuse: bool = True,
                channels_last: bool = True, dtype: str = "fp32",
                calib: list[np.ndarray] | None = None) -> tuple[Runner, list[str]]:
    """The runner for the request, or for the best fallback; also the fallback messages.
    ``dtype`` applies where it exists (bf16: torch on CPU; int8: onnxruntime on CPU); a
    fallback to another backend runs fp32 and says so."""
    check_backend(dtype, backend)
    notes: list[str] = []
    onnx_path = work_dir / f"{tag}.onnx"
    for b, d, h in _candidates(backend, device, fp16):
        try:
            want = dtype if b == backend else "fp32"
            if want != dtype:
                notes.append(f"{b} runs fp32, not {dtype}")
            if b == "openvino" and d != "cpu":
                raise Unavailable("OpenVINO runs on the CPU here")
            if b == "torch":
                return torch_runner(model, x, d, h, fuse, channels_last,
                                    _native(want, d, notes)), notes
            if not onnx_path.exists():
                export_onnx(model.cpu().float(), onnx_path, x.shape[-1], x.shape[0])
            if b == "openvino":
                return openvino_runner(onnx_path, x, threads, _native(want, d, notes)), notes
            if b == "onnxruntime":
                if h:
                    notes.append("onnxruntime runs the FP32 graph; FP16 not applied")
                if want == "int8" and d == "cpu":
                    return ort_runner(_int8_graph(onnx_path, x, calib, notes), x, d, threads,
                                      "int8"), notes
                if want == "int8":
                    notes.append(f"int8 is the CPU path; fp32 ran on {d}")
                return ort_runner(onnx_path, x, d, threads), notes
            return trt_runner(onnx_path, x, h, work_dir / "engines"), notes
        except Unavailable as e:
            notes.append(f"{b} on {d}{' fp16' if h else ''} unavailable: {e}")
            print(f"note: {notes[-1]}; trying the next best backend")
    raise Unavailable("no backend could run")  # torch on CPU always can; kept for clarity


def _native(dtype: str, device: str, notes: list[str]) -> str:
    """``dtype`` as it can run on ``device`` (bf16 → fp32 without native bf16), noted when not."""
    ran = resolve_dtype(dtype, device)
    if ran != dtype:
        notes.append(f"bf16 unavailable on {device}: fp32 ran")
    return ran


def _int8_graph(onnx_path: Path, x: torch.Tensor, calib: list[np.ndarray] | None,
                notes: list[str]) -> Path:
    """The statically quantised copy of ``onnx_path`` (cached), calibrated on ``calib`` (each
    repeated to the benchmark's batch) or on Gaussian inputs when none are given."""
    try:
        import onnxruntime.quantization  # noqa: F401 - lazy: the optional 'onnx' extra
    except ImportError:
        raise Unavailable("onnxruntime (quantization) is not installed") from None
    if calib is None:
        calib = random_inputs(tuple(x.shape), 8)
        notes.append("int8 calibrated on 8 Gaussian inputs (latency only, not accuracy)")
    calib = [c if c.shape[0] == x.shape[0] else np.repeat(c[:1], x.shape[0], 0) for c in calib]
    return quantize_onnx(onnx_path, calib)


def benchmark(model: nn.Module, name: str, backend: str = "torch", device: str = "cpu",
              fp16: bool = False, size: int = 640, batch: int = 1, runs: int = 30,
              warmup: int = 10, threads: int = 2, work_dir: str | Path = "runs/bench",
              fuse: bool = True, channels_last: bool = True, dtype: str = "fp32",
              calib: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Latency of ``model.forward_raw`` on a (batch, 3, size, size) input, plus environment
    and complexity, as a JSON-ready dict. ``dtype``: fp32, bf16 (torch CPU) or int8
    (onnxruntime CPU, calibrated on ``calib`` inputs of shape (1, 3, size, size))."""
    check_backend(dtype, backend)                # a wrong pair fails before any work
    pin_threads(threads)
    model = model.eval().float().cpu()
    cx = complexity(model, size)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    tag = f"{name}-{size}-b{batch}-{model_hash(model, f'{size}|{batch}')}"
    runner, notes = make_runner(model, x, backend, device, fp16, threads, Path(work_dir), tag,
                                fuse, channels_last, dtype, calib)
    times = time_runner(runner, runs, warmup)
    info = {k: v for k, v in runner.info.items() if k != "buffers"}
    return {"model": name, "requested": {"backend": backend, "device": device, "fp16": fp16,
                                         "dtype": dtype},
            "backend": runner.backend, "device": runner.device, "fp16": runner.fp16,
            "dtype": runner.dtype,
            "fallback": notes, "size": size, "batch": batch, "warmup": warmup,
            "threads": threads, "latency": summarize(times), **info,
            "params": cx["params"]["total"], "flops": cx["flops"]["total"],
            "complexity": cx, "env": envinfo.collect(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
