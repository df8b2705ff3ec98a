"""``rtmdet bench paper-latency``: the latency of every variant's *paper-scale* architecture,
so the paper's relative latency claims (3-6-6-3 vs 3-9-9-3, 7×7 vs 5×5 kernels, …) can be
checked whatever scale the models were trained at.

Latency does not depend on the weight values, so untrained weights are fine; it does depend on
the architecture, so the proxy-width model at proxy size (what ``rtmdet bench latency`` times
for each run) compares nothing with the paper. Here each *distinct* paper-scale architecture of
the tables whose paper gives latency (detection and instance segmentation; DOTA's rotated models
are not timed) is built once — variants shared between tables (``kernel_size/k5`` is
``stage_depth/d3663`` is ``backbone_neck_ratio/l_47``) are measured once — at 640×640, batch 1,
on the best CPU backend (onnxruntime, BatchNorm folded by its graph optimiser).

The rounds are **interleaved**: round r times every architecture (``calls`` timed calls each,
median kept), in an order rotated by r, before round r+1 starts. Load from other processes on a
shared machine then hits all architectures of a round alike, and the ratio of two
architectures *within* a round is the paired sample whose spread across rounds gives the
interval (:mod:`rtmdet.report_latency`).

Cost (2-core VM, 1 thread): the 20 distinct architectures take ≈ 30 s per round of one call
each (RTMDet-l ≈ 2 s per forward), plus ≈ 10 s per architecture for the ONNX export; the
default 5 rounds × 2 calls ≈ 9 min. Snakemake runs it alone on the CPU (cpu_share 2).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .experiment_spec import Experiment, load_experiment

SIZE = 640


@dataclass
class Architecture:
    """One distinct paper-scale model and every (ablation, variant) that uses it."""
    key: str
    model: dict[str, Any]
    uses: list[tuple[str, str]] = field(default_factory=list)


def has_latency_claim(exp: Experiment) -> bool:
    """Tables whose paper gives latency, with models timed at 640×640 (not DOTA's)."""
    from .experiment_resolve import model_type
    return (exp.paper is not None and "latency_ms" in exp.paper.columns
            and model_type(exp, exp.baseline) != "rotated")


def arch_key(model: dict[str, Any]) -> str:
    """Content hash of the resolved model section: equal configs are one architecture."""
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:12]


def architectures(experiments: Iterable[Experiment]) -> dict[str, Architecture]:
    """Distinct paper-scale architectures (80 COCO classes, as the paper's) of the tables
    with a latency claim, in first-use order."""
    from .experiment_resolve import PAPER_SCALE, resolve
    out: dict[str, Architecture] = {}
    for exp in experiments:
        if not has_latency_claim(exp):
            continue
        for v in exp.variants:
            model = resolve(exp, v, 0, PAPER_SCALE, "coco").model.model_dump(mode="json")
            a = out.setdefault(arch_key(model), Architecture(arch_key(model), model))
            a.uses.append((exp.name, v))
    return out


def interleaved_rounds(steps: dict[str, Callable[[], Any]], rounds: int, calls: int,
                       clock: Callable[[], float] = time.perf_counter) -> dict[str, list[list[float]]]:
    """key -> per round, the ``calls`` timings (ms); round r visits the keys in an order
    rotated by r, so no architecture is always first (or always after the heaviest)."""
    keys = list(steps)
    out: dict[str, list[list[float]]] = {k: [] for k in keys}
    for r in range(rounds):
        s = r % len(keys) if keys else 0
        for k in keys[s:] + keys[:s]:
            times = []
            for _ in range(calls):
                t0 = clock()
                steps[k]()
                times.append((clock() - t0) * 1e3)
            out[k].append(times)
    return out


def measure(archs: dict[str, Architecture], rounds: int = 5, calls: int = 2, warmup: int = 1,
            threads: int = 1, backend: str = "onnxruntime", device: str = "cpu",
            work_dir: str | Path = "runs/paper_latency", size: int = SIZE,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build, export and warm every architecture, then time them in interleaved rounds."""
    import torch

    from . import envinfo
    from .bench import make_runner, model_hash, pin_threads
    from .build import build_model
    from .complexity import count_params
    from .config import ModelConfig

    t_start = time.time()
    pin_threads(threads)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    runners, info = {}, {}
    for key, a in archs.items():
        torch.manual_seed(0)
        t0 = time.time()
        model = build_model(ModelConfig.model_validate(a.model)).eval()
        tag = f"{key}-{size}-{model_hash(model, str(size))}"
        runner, notes = make_runner(model, x, backend, device, False, threads, Path(work_dir),
                                    tag)
        for _ in range(warmup):
            runner.step()
        runners[key] = runner.step
        info[key] = {"uses": [list(u) for u in a.uses], "backend": runner.backend,
                     "device": runner.device, "fallback": notes,
                     "params": count_params(model)["total"], "setup_s": time.time() - t0}
        log(f"{key} ({', '.join('/'.join(u) for u in a.uses)}): ready in "
            f"{info[key]['setup_s']:.1f} s")
    t_timing = time.time()
    timings = interleaved_rounds(runners, rounds, calls)
    for key, per_round in timings.items():
        info[key]["round_ms"] = [float(np.median(t)) for t in per_round]
        info[key]["all_ms"] = [[round(v, 3) for v in t] for t in per_round]
        info[key]["median_ms"] = float(np.median(info[key]["round_ms"]))
        log(f"{key}: median {info[key]['median_ms']:.1f} ms over {rounds} rounds")
    return {"kind": "paper_latency", "size": size, "batch": 1, "backend": backend,
            "device": device, "threads": threads, "rounds": rounds, "calls": calls,
            "warmup": warmup, "order": "interleaved, rotated by one each round",
            "weights": "untrained (torch.manual_seed(0))", "archs": info,
            "setup_s": t_timing - t_start, "timing_s": time.time() - t_timing,
            "env": envinfo.collect(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiments", nargs="+", help="experiments/<name>.yaml (tables without a "
                   "latency claim are skipped)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--calls", type=int, default=2, help="timed calls per architecture and round")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per architecture")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch", "tensorrt"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--size", type=int, default=SIZE)
    p.add_argument("--work-dir", default="runs/paper_latency", help="ONNX files")
    p.add_argument("--list", action="store_true", help="only list the distinct architectures")
    p.add_argument("--out", help="write the JSON result here (atomically)")


def run(args: argparse.Namespace) -> int:
    from .io import write_or_print_json
    archs = architectures(load_experiment(e) for e in args.experiments)
    if args.list or not archs:
        for a in archs.values():
            print(a.key, " ".join("/".join(u) for u in a.uses))
        print(f"{len(archs)} distinct paper-scale architecture(s)")
        if args.list:
            return 0
    if args.rounds < 2:
        print("error: --rounds must be at least 2 (the interval is over rounds)")
        return 2
    res = measure(archs, args.rounds, args.calls, args.warmup, args.threads, args.backend,
                  args.device, args.work_dir, args.size)
    print(f"{len(archs)} architectures, {args.rounds} rounds × {args.calls} calls: setup "
          f"{res['setup_s']:.0f} s, timing {res['timing_s']:.0f} s")
    write_or_print_json(res, args.out, omit=("env",))
    return 0
