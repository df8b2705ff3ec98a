"""``rtmdet bench paper-latency`` (the measurement): the latency of every variant's
*paper-scale* architecture, so the paper's relative latency claims (3-6-6-3 vs 3-9-9-3, 7×7 vs
5×5 kernels, …) can be checked whatever scale the models were trained at.

Latency does not depend on the weight values, so untrained weights are fine; it does depend on
the architecture, so the proxy-width model at proxy size (what ``rtmdet bench latency`` times
for each run) compares nothing with the paper. Here each *distinct* paper-scale architecture of
the tables whose paper gives latency (detection and instance segmentation; DOTA's rotated models
are not timed) is built once — variants shared between tables (``kernel_size/k5`` is
``stage_depth/d3663`` is ``backbone_neck_ratio/l_47``) are measured once — at 640×640, batch 1,
on the best CPU backend (onnxruntime, BatchNorm folded by its graph optimiser). Which
architectures and pairs the tables need is :mod:`rtmdet.pipeline.latency_plan`'s job; this
module only times what it is given.

Each comparison the tables make (a variant and its reference, as two distinct architectures)
is a **pair**, timed **ABBA**: reference, variant, variant, reference, back to back, so the
variant's and the reference's calls are seconds apart and a linear drift of the machine's load
cancels; the ratio of the two sums is one paired sample. A round times every pair once, in an
order rotated by one each round; the spread of a pair's ratios over rounds gives its interval
(:mod:`rtmdet.pipeline.report_latency`). Timing all architectures in one sweep and pairing
whole sweeps was tried first: on the shared 2-core VM the load changes within a sweep (≈ 1 min),
and the per-round ratios of two heads with the same FLOPs (head_sharing separate vs SepBN)
ranged from 0.82 to 1.53.

Cost (2-core VM, 1 thread, measured while other sessions ran): 20 distinct architectures,
setup (ONNX export, session, warm-up) ≈ 100–200 s; 18 pairs, ≈ 110–150 s per round; the
default 5 rounds ≈ 12–14 min (less on an idle machine). Sessions stay loaded: ≈ 6.3 GB
resident. Snakemake runs it alone on the CPU (cpu_share 2).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rtmdet.config import ModelConfig
from rtmdet.models.build import build_model
from rtmdet.utils import envinfo

from .complexity import count_params
from .latency import make_runner
from .runners import model_hash, pin_threads

SIZE = 640


@dataclass
class Architecture:
    """One distinct paper-scale model (its resolved model section) and every (ablation,
    variant) that uses it."""
    key: str
    model: dict[str, Any]
    uses: list[tuple[str, str]] = field(default_factory=list)


def abba_rounds(steps: dict[str, Callable[[], Any]], pairs: list[tuple[str, str]], rounds: int,
                clock: Callable[[], float] = time.perf_counter
                ) -> tuple[list[list[float]], dict[str, list[list[float]]]]:
    """Per pair, its ratio (variant / reference) in each round, from one reference, variant,
    variant, reference block; and per architecture, its call times (ms) in each round. Round r
    visits the pairs in an order rotated by r."""
    ratios: list[list[float]] = [[] for _ in pairs]
    calls: dict[str, list[list[float]]] = {k: [] for k in steps}

    def timed(k: str) -> float:
        t0 = clock()
        steps[k]()
        ms = (clock() - t0) * 1e3
        calls[k][-1].append(ms)
        return ms
    for r in range(rounds):
        for k in steps:
            calls[k].append([])
        s = r % len(pairs) if pairs else 0
        for i in list(range(s, len(pairs))) + list(range(s)):
            v, ref = pairs[i]
            a1, b1, b2, a2 = timed(ref), timed(v), timed(v), timed(ref)
            ratios[i].append((b1 + b2) / (a1 + a2))
        for k in steps:             # an architecture in no pair is still timed for its ms
            if not calls[k][-1]:
                timed(k)
    return ratios, calls


def measure(archs: dict[str, Architecture], pairs: list[tuple[str, str]], rounds: int = 5,
            warmup: int = 1, threads: int = 1, backend: str = "onnxruntime", device: str = "cpu",
            work_dir: str | Path = "runs/paper_latency", size: int = SIZE,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build, export and warm every architecture, then time the pairs in ABBA rounds."""
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
    ratios, calls = abba_rounds(runners, pairs, rounds)
    for key, per_round in calls.items():
        info[key]["round_ms"] = [float(np.median(t)) for t in per_round]
        info[key]["all_ms"] = [[round(v, 3) for v in t] for t in per_round]
        info[key]["median_ms"] = float(np.median([v for t in per_round for v in t]))
        log(f"{key}: median {info[key]['median_ms']:.1f} ms")
    return {"kind": "paper_latency", "size": size, "batch": 1, "backend": backend,
            "device": device, "threads": threads, "rounds": rounds, "warmup": warmup,
            "order": "pairs timed ABBA (reference, variant, variant, reference), pair order "
                     "rotated by one each round",
            "weights": "untrained (torch.manual_seed(0))", "archs": info,
            "pairs": [{"variant": v, "reference": ref, "ratios": rs}
                      for (v, ref), rs in zip(pairs, ratios)],
            "setup_s": t_timing - t_start, "timing_s": time.time() - t_timing,
            "env": envinfo.collect(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
