"""The environment a measurement was taken in, saved next to every benchmark number.

A latency figure means nothing without the CPU, thread count, library versions and GPU that
produced it; every field here is cheap to collect and never raises (a missing library is
recorded as ``None``), so benchmarks can always attach it.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """Marketing name of the CPU (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD extensions that decide which kernels torch/onnxruntime can use."""
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "neon")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("flags", "features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - absent or broken: recorded as None
        return None
    return getattr(mod, "__version__", "unknown")


def git_commit() -> str | None:
    """Short hash of the checkout's HEAD, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def gpu_info() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"available": False}
    idx = torch.cuda.current_device()
    return {"available": True, "name": torch.cuda.get_device_name(idx),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(idx))),
            "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}


def collect() -> dict[str, Any]:
    """Everything that can change a latency number, as a JSON-ready dict."""

    try:
        import onnxruntime as ort    # lazy: the optional 'onnx' extra
        ort_providers = ort.get_available_providers()
    except Exception:  # noqa: BLE001
        ort_providers = None
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxruntime_providers": ort_providers,
        "openvino": _version("openvino"),
        "tensorrt": _version("tensorrt"),
        "numpy": _version("numpy"),
        "gpu": gpu_info(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "git_commit": git_commit(),
    }
