"""Ours vs the official RTMDet (mmdetection 3.3.0), side by side in one run, same machine, same
weights: inference, training step and the stage-1 data pipeline, interleaved block by block.

    .venv/bin/python benchmarks/vs_official.py [--models tiny s] [--rounds 10] [--block 5]
        [--train-sizes 320 640] [--only infer train data] [--out benchmarks/results/vs_official.json]

The official code runs in the oracle venv (``tests/reference/make_reference.py`` creates it
when missing, plus onnx/onnxruntime for its ONNX variant) as a worker process
(``benchmarks/vs_official_mm.py``); ours runs in this process. Only one side computes at a
time: a *round* times one block of every cell (official and ours, every variant) in an order
rotated by one each round, so load drift on a shared VM spreads over all cells, and each
official/ours ratio is **paired by round** (the ratio of the two cells' medians in the same
round); the table gives its median over rounds and its min–max.

Same weights: the official model is built from its config and its state dict is loaded into
ours (``load_mmdet_weights``); the outputs of every variant on the timed input are compared
with the official plain forward (max |Δ| over all outputs), so a speed-up that changed the
numbers shows up next to it. Accuracy of our bf16/int8 paths on real detections is
``benchmarks/precision_parity.py``'s job (proxy validation AP); this script reports its JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reference"))
sys.path.insert(0, str(REPO / "benchmarks"))

import make_reference  # noqa: E402  (the oracle venv)
from vs_official_ours import Ours  # noqa: E402
from vs_official_stats import (INFER_CELLS, OPENVINO_ON_OFFICIAL, cell_stats,  # noqa: E402
                               fastest, paired_ratio, report)

from rtmdet.bench.data_throughput import ensure_images  # noqa: E402
from rtmdet.utils import envinfo  # noqa: E402
from rtmdet.utils.io import atomic_write_json  # noqa: E402

# onnx/onnxruntime for the official ONNX variant: our venv's versions; numpy stays < 2 (mmcv)
# and ml_dtypes 0.5.4 is the newest that onnx 1.23 accepts with it.
BENCH_DEPS = ["numpy==1.26.4", "ml_dtypes==0.5.4"]


class Worker:
    """The official side: a ``vs_official_mm.py`` process in the oracle venv."""

    def __init__(self, python: Path) -> None:
        env = dict(os.environ, RTMDET_ORACLE=str(make_reference.ORACLE), PYTHONWARNINGS="ignore",
                   OMP_NUM_THREADS="2")
        self.log = tempfile.NamedTemporaryFile("w", prefix="vs_official_mm_", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen([str(python), str(REPO / "benchmarks/vs_official_mm.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env, bufsize=1)
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"official worker died; its log: {self.log.name}")
        reply = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"official worker: {reply['error']} (log: {self.log.name})")
        return reply

    def __call__(self, op: str, **kw: Any) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def ensure_oracle() -> Path:
    """The oracle venv (detection only) with onnx/onnxruntime at our venv's versions."""
    make_reference.ensure_venv(rotated=False)
    py = make_reference.VENV_PY
    if subprocess.run([str(py), "-c", "import onnx, onnxruntime"], capture_output=True).returncode:
        from importlib.metadata import version
        pins = [f"onnx=={version('onnx')}", f"onnxruntime=={version('onnxruntime')}"]
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pins, *BENCH_DEPS], check=True)
    return py


def interleave(cells: dict[str, Callable[[int], list[float]]], rounds: int, block: int,
               pause: float = 0.3) -> dict[str, list[list[float]]]:
    """Per cell, the seconds of each call, per round. Round r runs the cells in an order rotated
    by r; ``pause`` lets the idle side's thread pool stop spinning before the next block."""
    keys = list(cells)
    out: dict[str, list[list[float]]] = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            time.sleep(pause)
            out[k].append(cells[k](block))
    return out


def max_abs_diff(ref: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(ref, got))


def bench_infer(w: Worker, ours: Ours, size: str, args, work: Path) -> dict:
    tag = f"{size}-{args.size}"
    wfile, xfile, ofile = work / f"official_{size}.pt", work / f"x_{tag}.pt", work / f"out_{tag}.pt"
    built = w("build", size=size, seed=0, weights=str(wfile))
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    torch.save(x, xfile)
    w("threads", torch=args.threads, cv2=1)
    official_onnx = work / f"official_{tag}.onnx"
    w("infer", input=str(xfile), outputs=str(ofile), onnx=str(official_onnx),
      threads=args.threads)
    official_out = torch.load(ofile, weights_only=True)
    for k in OPENVINO_ON_OFFICIAL:           # the official graph in OpenVINO, run from here
        official_out[k] = ours.openvino(f"official_{k}", official_onnx, x, args.threads,
                                        k.split("_")[1])
    ours_out = ours.infer(size, wfile, x, work, args.threads)
    ref = official_out["plain"]
    diffs = {f"official/{k}": max_abs_diff(ref, v) for k, v in official_out.items()}
    diffs |= {f"ours/{k}": max_abs_diff(ref, v) for k, v in ours_out.items()}
    cells = {f"official/{k}": (lambda n, k=k: w("time", what=k, n=n)["seconds"])
             for k in INFER_CELLS["official"] if k not in OPENVINO_ON_OFFICIAL}
    cells |= {f"official/{k}": (lambda n, k=k: ours.time(f"official_{k}", n))
              for k in OPENVINO_ON_OFFICIAL}
    cells |= {f"ours/{k}": (lambda n, k=k: ours.time(k, n)) for k in INFER_CELLS["ours"]}
    times = interleave(cells, args.rounds, args.block)
    stats = {k: cell_stats(v) for k, v in times.items()}
    best_official = min(INFER_CELLS["official"][:3],   # fp32 paths: the "official best"
                        key=lambda k: stats[f"official/{k}"]["median"])
    return {"model": f"rtmdet-{size}", "params": built["params"], "config": built["config"],
            "size": args.size, "threads": args.threads, "cells": stats,
            "max_abs_diff_vs_official_plain": diffs, "official_best_fp32": best_official,
            "ratios_vs_official_best": {k: paired_ratio(times[f"official/{best_official}"], v)
                                        for k, v in times.items() if k.startswith("ours/")},
            "ratios_same_path": {k: paired_ratio(times[f"official/{k}"], times[f"ours/{k}"])
                                 for k in INFER_CELLS["official"]},
            "fastest": fastest(times)}


def bench_train(w: Worker, ours: Ours, size: str, img: int, args, work: Path) -> dict:
    wfile, bfile = work / f"official_{size}.pt", work / f"batch_{img}.pt"
    w("build", size=size, seed=0, weights=str(wfile))    # the worker holds one model at a time
    torch.save(ours.batch(args.train_batch, img), bfile)
    lr = ours.train(size, wfile, bfile, img, args.bench_root, work)
    w("threads", torch=args.threads, cv2=1)
    official = w("train", batch=str(bfile), lr=lr)
    times = interleave({"official/train": lambda n: w("time", what="train", n=n)["seconds"],
                        "ours/train": lambda n: ours.time("train", n)},
                       args.train_rounds, args.train_block)
    return {"model": f"rtmdet-{size}", "size": img, "batch": args.train_batch, "lr": lr,
            "official_optimizer": official, "threads": args.threads,
            "cells": {k: cell_stats(v) for k, v in times.items()},
            "ratio": paired_ratio(times["official/train"], times["ours/train"])}


def bench_data(w: Worker, ours: Ours, args) -> dict:
    preset = args.data_preset.split("-")[-1]
    w("build", size=preset, seed=0, weights=str(args.work_dir / f"official_{preset}.pt"))
    w("threads", torch=1, cv2=1)
    torch.set_num_threads(1)
    official = w("data", root=str(args.bench_root), size=args.size, warmup=args.data_warmup)
    mine = ours.data(args.data_preset, args.bench_root, args.size, args.data_warmup)
    times = interleave({"official/data": lambda n: w("time", what="data", n=n)["seconds"],
                        "ours/data": lambda n: ours.time("data", n)},
                       args.data_rounds, args.data_n)
    torch.set_num_threads(args.threads)
    cells = {k: cell_stats(v) for k, v in times.items()}
    rate = {k: [len(r) / sum(r) for r in v] for k, v in times.items()}
    return {"preset": args.data_preset, "size": args.size, "root": str(args.bench_root),
            "official": official, "ours": mine, "cells": cells,
            "samples_per_s": {k: {"median": statistics.median(v), "rounds": v}
                              for k, v in rate.items()},
            "ratio": {"median": statistics.median(
                a / b for a, b in zip(rate["ours/data"], rate["official/data"])),
                "rounds": [a / b for a, b in zip(rate["ours/data"], rate["official/data"])]}}


def versions() -> dict[str, str]:
    """Our side's libraries (the official side's come from its worker): the data pipeline runs
    on each side's own OpenCV/numpy (mmcv needs numpy < 2, so the venvs cannot share them)."""
    from importlib.metadata import version
    return {k: version(k) for k in ("torch", "onnxruntime", "openvino", "opencv-python-headless",
                                    "numpy")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny", "s"], choices=["tiny", "s", "m", "l", "x"])
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10, help="inference rounds")
    p.add_argument("--block", type=int, default=5, help="timed calls per cell and round")
    p.add_argument("--train-sizes", nargs="+", type=int, default=[320, 640])
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--train-rounds", type=int, default=4)
    p.add_argument("--train-block", type=int, default=2)
    p.add_argument("--data-preset", default="rtmdet-l")
    p.add_argument("--data-rounds", type=int, default=4)
    p.add_argument("--data-n", type=int, default=100, help="items per block")
    p.add_argument("--data-warmup", type=int, default=40)
    p.add_argument("--bench-root", type=Path, default=REPO / "data/bench_coco_480x640")
    p.add_argument("--only", nargs="+", default=["infer", "train", "data"],
                   choices=["infer", "train", "data"])
    p.add_argument("--work-dir", type=Path, default=REPO / "runs/vs_official")
    p.add_argument("--parity", type=Path,
                   default=REPO / "benchmarks/results/precision_parity_proxy.json")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/vs_official.json")
    args = p.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    worker = Worker(ensure_oracle())
    ensure_images(args.bench_root, 200, workers=2)
    ours, res = Ours(), {"versions": worker.hello["versions"], "ours_versions": versions()}
    try:
        if "infer" in args.only:
            res["inference"] = [bench_infer(worker, ours, m, args, args.work_dir)
                                for m in args.models]
        if "train" in args.only:
            res["train_step"] = [bench_train(worker, ours, m, s, args, args.work_dir)
                                 for s in args.train_sizes for m in args.models]
        if "data" in args.only:
            res["data"] = bench_data(worker, ours, args)
    finally:
        worker.close()
    parity = json.loads(args.parity.read_text()) if args.parity.exists() else None
    lines = report(res, parity)
    env = envinfo.collect()
    v, o = res["versions"], res["ours_versions"]
    head = (f"ours vs official mmdetection {v['mmdet']} in one run on {env['cpu']} "
            f"({env['logical_cpus']} CPUs), {time.strftime('%Y-%m-%d')}, {time.time() - t0:.0f} s; "
            f"official / ours: torch {v['torch']} / {o['torch']}, onnxruntime "
            f"{v['onnxruntime']} / {o['onnxruntime']}, OpenCV {v['opencv']} / "
            f"{o['opencv-python-headless']}, numpy {v['numpy']} / {o['numpy']}; OpenVINO "
            f"{o['openvino']} (ours, runs both graphs)")
    print(head + "\n" + "\n".join(lines))
    atomic_write_json(args.out, {"benchmark": "vs_official", **res, "table": [head, *lines],
                                 "parity": str(args.parity) if parity else None,
                                 "args": {k: str(v) for k, v in vars(args).items()},
                                 "wall_s": time.time() - t0, "env": env,
                                 "load_avg_at_end": os.getloadavg(),
                                 "command": " ".join(sys.argv)})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
