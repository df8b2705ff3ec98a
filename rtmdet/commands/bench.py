"""``rtmdet bench latency CONFIG ...`` (forward latency in the paper's protocol, JSON),
``rtmdet bench data ...`` (cached vs uncached stage-1 data pipeline, JSON) and
``rtmdet bench paper-latency EXPERIMENTS ...`` (every distinct paper-scale architecture of the
tables, compared pairs timed ABBA, JSON)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rtmdet.bench.data_throughput import add_arguments as data_arguments
from rtmdet.bench.data_throughput import run as run_data
from rtmdet.bench.latency import BACKENDS, benchmark
from rtmdet.bench.paper_latency import SIZE, measure
from rtmdet.config import Config
from rtmdet.export.quantize import calibration_inputs
from rtmdet.models.precision import check_backend
from rtmdet.models.weights import load_model
from rtmdet.pipeline.latency_plan import architectures, comparisons
from rtmdet.pipeline.spec import load_experiment
from rtmdet.utils.io import write_or_print_json

from .common import add_dtype, add_overrides, resolve_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    lat = sub.add_parser("latency", help="forward-pass latency (median, p90) as JSON")
    lat.add_argument("config", help="preset name (rtmdet-s) or YAML config")
    lat.add_argument("--weights", help="our checkpoint; random weights if omitted (latency "
                     "does not depend on the values)")
    add_overrides(lat)
    lat.add_argument("--backend", choices=BACKENDS, help="default: bench.backend")
    lat.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                     help="auto (CUDA when available, else CPU), cpu or cuda (default: "
                          "bench.device of the config, part of its latency protocol)")
    lat.add_argument("--fp16", action="store_true", default=None, help="half precision (GPU)")
    add_dtype(lat, engine=False)
    for opt in ("size", "batch", "runs", "warmup", "threads"):
        lat.add_argument(f"--{opt}", type=int, help=f"default: bench.{opt}")
    lat.add_argument("--no-fuse", dest="fuse", action="store_false",
                     help="torch: keep BatchNorm layers (default: folded into the convs)")
    lat.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="torch: NHWC memory format (default: bench.channels_last, on)")
    lat.add_argument("--out", help="write the JSON result here (atomically)")
    lat.add_argument("--work-dir", default="runs/bench", help="ONNX files and TensorRT engines")
    lat.add_argument("--mlflow", action="store_true",
                     help="log the latency into the MLflow run of each --mlflow-run-dir (default: "
                     "the config's work_dir)")
    lat.add_argument("--mlflow-run-dir", action="append", default=[], metavar="DIR",
                     help="run folder whose MLflow run gets the latency (repeatable)")
    data = sub.add_parser("data", help="stage-1 data pipeline, cached vs uncached Mosaic/MixUp "
                          "(ms per step, images loaded) as JSON")
    data_arguments(data)
    data.add_argument("--out", help="write the JSON result here (atomically)")
    pl = sub.add_parser("paper-latency", help="latency of each distinct paper-scale architecture "
                        "of the tables (640x640, bs 1, untrained), compared pairs timed ABBA")
    pl.add_argument("experiments", nargs="+", help="experiments/<name>.yaml (tables without a "
                    "latency claim are skipped)")
    pl.add_argument("--rounds", type=int, default=5, help="ABBA rounds (default 5, at least 2)")
    pl.add_argument("--warmup", type=int, default=1, help="untimed calls per architecture")
    pl.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    pl.add_argument("--backend", default="onnxruntime", choices=BACKENDS,
                    help="runtime timed (default onnxruntime)")
    pl.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                    help="cpu (default: the tables' latency is CPU latency), cuda or auto")
    pl.add_argument("--size", type=int, default=SIZE, help=f"input side (default {SIZE})")
    pl.add_argument("--work-dir", default="runs/paper_latency/onnx", help="ONNX files")
    pl.add_argument("--list", action="store_true", help="only list architectures and pairs")
    pl.add_argument("--out", help="write the JSON result here (atomically)")


def run_paper_latency(args: argparse.Namespace) -> int:
    exps = [load_experiment(e) for e in args.experiments]
    archs = architectures(exps)
    pairs = comparisons(exps, archs)
    if args.list:
        for a in archs.values():
            print(a.key, " ".join("/".join(u) for u in a.uses))
        print(f"{len(archs)} distinct paper-scale architecture(s), {len(pairs)} pair(s)")
        return 0
    if args.rounds < 2:
        print("error: --rounds must be at least 2 (the interval is over rounds)")
        return 2
    res = measure(archs, pairs, args.rounds, args.warmup, args.threads, args.backend,
                  resolve_device(args.device), args.work_dir, args.size)
    print(f"{len(archs)} architectures, {len(pairs)} pairs, {args.rounds} ABBA rounds: setup "
          f"{res['setup_s']:.0f} s, timing {res['timing_s']:.0f} s")
    write_or_print_json(res, args.out, omit=("env",))
    return 0


def latency_calibration(cfg: Config, n: int, size: int) -> list[np.ndarray] | None:
    """int8 calibration inputs: ``n`` training images of the config's data when it is on disk,
    else None (the benchmark then calibrates on Gaussian inputs and records it: latency does
    not depend on the values, accuracy does, so eval never falls back)."""
    if not (Path(cfg.data.root) / cfg.data.train_ann).exists():
        print(f"note: {cfg.data.root}/{cfg.data.train_ann} not found: int8 calibrated on "
              "Gaussian inputs (fine for latency, not for accuracy)")
        return None
    return calibration_inputs(cfg, n, size)


def run(args: argparse.Namespace) -> int:
    if args.bench_command == "data":
        return run_data(args)
    if args.bench_command == "paper-latency":
        return run_paper_latency(args)
    if args.backend is not None:                 # a wrong pair fails before the model is built
        check_backend(args.dtype, args.backend)
    model, cfg = load_model(args.config, args.weights, args.overrides)
    b = cfg.bench
    pick = lambda v, d: d if v is None else v  # noqa: E731
    device = b.device if args.device is None else resolve_device(args.device)
    # int8 exists on onnxruntime only: --dtype int8 without --backend picks it
    backend = pick(args.backend, "onnxruntime" if args.dtype == "int8" else b.backend)
    size = pick(args.size, b.size)
    calib = (latency_calibration(cfg, args.calib_images, size) if args.dtype == "int8"
             else None)
    res = benchmark(model, cfg.name, backend, device,
                    pick(args.fp16, b.fp16), size, pick(args.batch, b.batch),
                    pick(args.runs, b.runs), pick(args.warmup, b.warmup),
                    pick(args.threads, b.threads), args.work_dir, args.fuse,
                    pick(args.channels_last, b.channels_last), args.dtype, calib)
    res["config"] = args.config
    lat = res["latency"]
    print(f"{res['model']} {res['backend']}/{res['device']}{' fp16' if res['fp16'] else ''} "
          f"{res['dtype']} "
          f"{res['size']}x{res['size']} bs{res['batch']} threads {res['threads']}: median "
          f"{lat['median_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms ({lat['runs']} runs after "
          f"{res['warmup']} warm-up)")
    write_or_print_json(res, args.out, omit=("env", "complexity"))
    if args.mlflow:
        from rtmdet.engine.tracking import log_bench
        log_bench(cfg, res, args.out, args.mlflow_run_dir)
    return 0
