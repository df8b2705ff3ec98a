"""Inference precision (issue 18): the one place that knows what ``--dtype`` means.

- ``fp32``: the reference.
- ``bf16``: the torch forward under ``torch.autocast("cpu", torch.bfloat16)``: convolutions run
  in bfloat16 on oneDNN (fp32 accumulation), about 1.8x faster on CPUs with native bf16
  instructions (AVX-512 BF16 or AMX). Without them oneDNN emulates bf16 and is *slower* than
  fp32, so :func:`resolve_dtype` detects native support and falls back to fp32 with one log line.
- ``int8``: not a torch mode: an onnxruntime graph after static QDQ quantisation
  (:mod:`rtmdet.export.quantize`); this module names it and detects VNNI, which decides how
  the weights are quantised.

The dtype is a command-line choice, not a config field: ``bench``/``eval`` sections are part of
:func:`rtmdet.config.schema.config_hash`, so a new field would change the key of every existing
run; the precision used is recorded in each result instead.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

import torch

from rtmdet.utils.errors import UserError

log = logging.getLogger(__name__)

DTYPES = ("fp32", "bf16", "int8")
TORCH_DTYPES = ("fp32", "bf16")          # what the torch forward (predict, bench torch) runs
_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of native bf16 arithmetic
_warned: set[str] = set()


class DtypeError(UserError, ValueError):
    """An unknown precision name or one the chosen backend cannot run (one CLI line)."""


def check_dtype(dtype: str, allowed: tuple[str, ...] = DTYPES, where: str = "--dtype") -> str:
    """``dtype`` if it is one of ``allowed``, else a one-line :class:`DtypeError` naming them."""
    if dtype not in allowed:
        raise DtypeError(f"{where} {dtype!r}: expected one of {', '.join(allowed)}")
    return dtype


def cpu_flags(path: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_support() -> tuple[bool, str]:
    """(native bf16 on this CPU, the reason). Torch's own probes first (they ask CPUID, so they
    also work where /proc is absent), /proc/cpuinfo when this torch lacks them; oneDNN must also
    accept bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``)."""
    if not torch.backends.mkldnn.is_available():
        return False, "torch was built without oneDNN (mkldnn)"
    probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported",
                                                    "_is_amx_tile_supported")]
    if all(p is not None for p in probes):
        native = any(p() for p in probes)
        how = "torch.cpu probes (AVX-512 BF16 / AMX)"
    else:
        flags = cpu_flags()
        native = any(f in flags for f in _CPU_FLAGS)
        how = f"/proc/cpuinfo flags {'/'.join(_CPU_FLAGS)}"
    if not native:
        return False, f"no native bf16 instructions ({how})"
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None and not check():
        return False, "oneDNN reports no bf16 support"
    return True, f"native bf16 ({how})"


def vnni_support() -> bool:
    """Whether the CPU has VNNI (AVX-512 VNNI or AVX-VNNI): int8 dot products without the
    16-bit intermediate that saturates u8 x s8 products on older AVX2/AVX-512 CPUs."""
    probe = getattr(torch.cpu, "_is_vnni_supported", None)
    if probe is not None:
        return bool(probe())
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """The dtype that will actually run: ``bf16`` becomes ``fp32`` (one log line per process and
    reason) on a CPU without native bf16 (emulated bf16 is slower than fp32, so running it would
    defeat the purpose) and on a non-CPU device (the GPU path is ``--fp16``)."""
    check_dtype(dtype)
    if dtype != "bf16":
        return dtype
    if device != "cpu":
        ok, why = False, f"bf16 autocast is the CPU path, device is {device} (use --fp16 on GPU)"
    else:
        ok, why = bf16_support()
    if not ok:
        if why not in _warned:
            _warned.add(why)
            log.warning("bf16 requested but unavailable: %s; running fp32", why)
        return "fp32"
    return "bf16"


def run_tag(dtype: str, engine: str = "torch") -> str:
    """The name part that keeps a run's outputs apart from the torch fp32 ones: '' for torch
    fp32, else ``_<engine>`` and/or ``_<dtype>`` (``_bf16``, ``_openvino``, ``_openvino_bf16``).
    One spelling for the eval files (``eval_bf16.json``), their MLflow keys (``eval_bf16/AP``)
    and the latency keys (``bench_openvino_bf16/latency_ms``)."""
    return ("" if engine == "torch" else f"_{engine}") + ("" if dtype == "fp32" else f"_{dtype}")


@contextlib.contextmanager
def autocast(dtype: str) -> Iterator[None]:
    """The forward's precision context: bf16 autocast on CPU for ``bf16``, nothing for ``fp32``.

    Autocast rather than ``model.to(torch.bfloat16)``: the same cached BN-folded fp32 copy serves
    both precisions, and autocast keeps the ops it lists as precision-sensitive in fp32."""
    check_dtype(dtype, TORCH_DTYPES)
    if dtype == "bf16":
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def to_float(raw: Any) -> Any:
    """Head outputs (tensors, nested lists/tuples of them) cast back to float32.

    Why: post-processing must not run in bf16. bf16 keeps 8 significant bits, which the raw
    maps tolerate (a relative error of 2^-9, i.e. IoU ~0.99 for any box), but decoding does
    not: it adds the distances to prior coordinates of up to the canvas size, where bf16's
    spacing is 2 px (256-512) to 4 px (512-1024), and the sigmoid scores would have ~3
    significant digits, so scores tie and the per-level top-k, the score threshold and NMS
    order pick other candidates. Casting the raw maps (all that bf16 computed) keeps decode,
    thresholds and NMS exactly the fp32 code path; the cast costs microseconds."""
    if isinstance(raw, torch.Tensor):
        return raw.float() if raw.is_floating_point() else raw
    if isinstance(raw, (list, tuple)):
        return type(raw)(to_float(r) for r in raw)
    return raw


def check_backend(dtype: str, backend: str) -> None:
    """The precision/backend pairs that exist: bf16 is the torch CPU path or OpenVINO
    (onnxruntime's CPU provider has no bf16 convolutions), int8 the onnxruntime one (static
    QDQ quantisation)."""
    check_dtype(dtype)
    need = {"bf16": ("torch", "openvino"), "int8": ("onnxruntime",)}.get(dtype)
    if need is not None and backend not in need:
        raise DtypeError(f"--dtype {dtype} runs on the {' or '.join(need)} backend, not "
                         f"{backend}; use --backend {need[0]}")
