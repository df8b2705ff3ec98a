"""``rtmdet bench latency``: forward-pass latency in the paper's protocol (SPEC §11).
(``rtmdet bench data``, the cached vs uncached data pipeline, is :mod:`rtmdet.data.throughput`.)

Forward only (no pre-processing, no NMS), a fixed input, warm-up runs discarded, then the
median and 90th percentile of ``runs`` timed calls. Threads are pinned (torch intra-op,
onnxruntime intra-op) and reported, because on a shared CPU the thread count changes latency
more than most ablations do. The JSON result carries the environment (``rtmdet.envinfo``) and
the model's params/FLOPs, so the latency column of a table can always be traced to a machine.

Backends: ``torch`` (CPU or CUDA, optional FP16 on CUDA), ``onnxruntime`` (CPU, or CUDA with
I/O bound on the device), ``tensorrt`` (FP16 engine built from our ONNX with the TensorRT Python
API, cached by model hash, timed with CUDA events; see :mod:`rtmdet.tensorrt_backend`, imported
only when asked for, since TensorRT is an optional extra). An unavailable backend or device prints
one line and falls back to the best available one; the result records both what was asked for
and what ran.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

BACKENDS = ("torch", "onnxruntime", "tensorrt")


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


def pin_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def model_hash(model: nn.Module, extra: str = "") -> str:
    """Content hash of the weights (and ``extra``: size, batch…) to key cached artefacts."""
    h = hashlib.sha256(extra.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- runners
def torch_runner(model: nn.Module, x: torch.Tensor, device: str, fp16: bool,
                 fuse: bool = True, channels_last: bool = True) -> Runner:
    """``fuse`` folds BatchNorm into the convs (as onnxruntime and TensorRT do in their graph
    optimisers, so the backends compare like for like); ``channels_last`` runs NHWC."""
    if device == "cuda" and not torch.cuda.is_available():
        raise Unavailable("torch sees no CUDA GPU")
    if fp16 and device != "cuda":
        raise Unavailable("FP16 needs --device cuda")
    if fuse:
        from .fuse import fuse_model
        model = fuse_model(model)
    model = model.to(device).eval()
    x = x.to(device)
    if fp16:
        model, x = model.half(), x.half()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> Any:
        with torch.inference_mode():
            return model.forward_raw(x)
    stream = torch.cuda.current_stream() if device == "cuda" else None
    return Runner(step, "torch", device, fp16, stream,
                  {"torch_fused_bn": fuse, "channels_last": channels_last})


def ort_runner(onnx_path: Path, x: torch.Tensor, device: str, threads: int) -> Runner:
    try:
        import onnxruntime as ort
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
        return Runner(lambda: sess.run_with_iobinding(binding), "onnxruntime", device, False)
    feed = {"images": x.numpy()}
    return Runner(lambda: sess.run(None, feed), "onnxruntime", device, False)


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
                channels_last: bool = True) -> tuple[Runner, list[str]]:
    """The runner for the request, or for the best fallback; also the fallback messages."""
    notes: list[str] = []
    onnx_path = work_dir / f"{tag}.onnx"
    for b, d, h in _candidates(backend, device, fp16):
        try:
            if b == "torch":
                return torch_runner(model, x, d, h, fuse, channels_last), notes
            if not onnx_path.exists():
                from .export import export_onnx
                export_onnx(model.cpu().float(), onnx_path, x.shape[-1], x.shape[0])
            if b == "onnxruntime":
                if h:
                    notes.append("onnxruntime runs the FP32 graph; FP16 not applied")
                return ort_runner(onnx_path, x, d, threads), notes
            from .tensorrt_backend import trt_runner  # lazy: TensorRT is optional
            return trt_runner(onnx_path, x, h, work_dir / "engines"), notes
        except Unavailable as e:
            notes.append(f"{b} on {d}{' fp16' if h else ''} unavailable: {e}")
            print(f"note: {notes[-1]}; trying the next best backend")
    raise Unavailable("no backend could run")  # torch on CPU always can; kept for clarity


def benchmark(model: nn.Module, name: str, backend: str = "torch", device: str = "cpu",
              fp16: bool = False, size: int = 640, batch: int = 1, runs: int = 30,
              warmup: int = 10, threads: int = 2, work_dir: str | Path = "runs/bench",
              fuse: bool = True, channels_last: bool = True) -> dict[str, Any]:
    """Latency of ``model.forward_raw`` on a (batch, 3, size, size) input, plus environment
    and complexity, as a JSON-ready dict."""
    from . import envinfo
    from .complexity import complexity

    pin_threads(threads)
    model = model.eval().float().cpu()
    cx = complexity(model, size)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    tag = f"{name}-{size}-b{batch}-{model_hash(model, f'{size}|{batch}')}"
    runner, notes = make_runner(model, x, backend, device, fp16, threads, Path(work_dir), tag,
                                fuse, channels_last)
    times = time_runner(runner, runs, warmup)
    info = {k: v for k, v in runner.info.items() if k != "buffers"}
    return {"model": name, "requested": {"backend": backend, "device": device, "fp16": fp16},
            "backend": runner.backend, "device": runner.device, "fp16": runner.fp16,
            "fallback": notes, "size": size, "batch": batch, "warmup": warmup,
            "threads": threads, "latency": summarize(times), **info,
            "params": cx["params"]["total"], "flops": cx["flops"]["total"],
            "complexity": cx, "env": envinfo.collect(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    lat = sub.add_parser("latency", help="forward-pass latency (median, p90) as JSON")
    lat.add_argument("config", help="preset name (rtmdet-s) or YAML config")
    lat.add_argument("--weights", help="our checkpoint; random weights if omitted (latency "
                     "does not depend on the values)")
    lat.add_argument("--backend", choices=BACKENDS, help="default: bench.backend")
    lat.add_argument("--device", choices=["cpu", "cuda"], help="default: bench.device")
    lat.add_argument("--fp16", action="store_true", default=None, help="half precision (GPU)")
    for opt in ("size", "batch", "runs", "warmup", "threads"):
        lat.add_argument(f"--{opt}", type=int, help=f"default: bench.{opt}")
    lat.add_argument("--no-fuse", dest="fuse", action="store_false",
                     help="torch: keep BatchNorm layers (default: folded into the convs)")
    lat.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="torch: NHWC memory format (default: bench.channels_last, on)")
    lat.add_argument("--out", help="write the JSON result here (atomically)")
    lat.add_argument("--work-dir", default="runs/bench", help="ONNX files and TensorRT engines")
    lat.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    lat.add_argument("--mlflow", action="store_true",
                     help="log the latency into the MLflow run of each --mlflow-run-dir (default: "
                     "the config's work_dir)")
    lat.add_argument("--mlflow-run-dir", action="append", default=[], metavar="DIR",
                     help="run folder whose MLflow run gets the latency (repeatable)")
    from .data.throughput import add_arguments as data_arguments
    data = sub.add_parser("data", help="stage-1 data pipeline, cached vs uncached Mosaic/MixUp "
                          "(ms per step, images loaded) as JSON")
    data_arguments(data)
    data.add_argument("--out", help="write the JSON result here (atomically)")


def run(args: argparse.Namespace) -> int:
    if args.bench_command == "data":
        from .data.throughput import run as run_data
        return run_data(args)
    from .export import load_model
    from .io import write_or_print_json

    model, cfg = load_model(args.config, args.weights, args.override)
    b = cfg.bench
    pick = lambda v, d: d if v is None else v  # noqa: E731
    res = benchmark(model, cfg.name, pick(args.backend, b.backend), pick(args.device, b.device),
                    pick(args.fp16, b.fp16), pick(args.size, b.size), pick(args.batch, b.batch),
                    pick(args.runs, b.runs), pick(args.warmup, b.warmup),
                    pick(args.threads, b.threads), args.work_dir, args.fuse,
                    pick(args.channels_last, b.channels_last))
    res["config"] = args.config
    lat = res["latency"]
    print(f"{res['model']} {res['backend']}/{res['device']}{' fp16' if res['fp16'] else ''} "
          f"{res['size']}x{res['size']} bs{res['batch']} threads {res['threads']}: median "
          f"{lat['median_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms ({lat['runs']} runs after "
          f"{res['warmup']} warm-up)")
    write_or_print_json(res, args.out, omit=("env", "complexity"))
    if args.mlflow:
        from .tracking import log_bench
        log_bench(cfg, res, args.out, args.mlflow_run_dir)
    return 0
