"""Seconds per training step on CPU: forward, assigner, loss, backward, AdamW (issue 10).

Usage: ``python benchmarks/train_step.py [--models rtmdet-tiny rtmdet-s] [--sizes 320 640]
[--batch 4] [--steps 5] [--warmup 2] [--threads 2] [--layouts channels_last nchw]
[--out benchmarks/results/train_step.json]``

The step is ``Trainer.train_step`` without the data loader: random normalised images, random
synthetic targets (1–20 boxes per image, 80 classes), the config's criterion and optimizer
(AdamW over the config's parameter groups, fused kernel as ``train.fused_optimizer`` says). Each phase is timed with ``perf_counter`` inside
the step so the profile adds up to the step time; the criterion's ``assign`` is wrapped to
split assigner from loss. Ours against the official training step, timed in the same run:
``benchmarks/vs_official.py``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch


from rtmdet.utils import envinfo
from rtmdet.models.build import build_model
from rtmdet.config import load_config
from rtmdet.losses.build import build_criterion
from rtmdet.utils.io import atomic_write_json
from rtmdet.engine.optim import build_optimizer

PHASES = ("forward", "assign", "loss", "backward", "optimizer")


def random_targets(batch: int, size: int, num_classes: int, gen: torch.Generator) -> list[dict]:
    """1–20 boxes per image, 8–50 % of the side, inside the canvas."""
    out = []
    for _ in range(batch):
        n = int(torch.randint(1, 21, (1,), generator=gen))
        wh = torch.rand(n, 2, generator=gen) * 0.42 * size + 0.08 * size
        xy = torch.rand(n, 2, generator=gen) * (size - wh)
        out.append({"boxes": torch.cat([xy, xy + wh], 1),
                    "labels": torch.randint(0, num_classes, (n,), generator=gen)})
    return out


def time_steps(preset: str, size: int, batch: int, steps: int, warmup: int,
               channels_last: bool = False) -> dict:
    cfg = load_config(preset)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    criterion = build_criterion(cfg, model)
    optimizer = build_optimizer(model, cfg.train, batch)
    gen = torch.Generator().manual_seed(0)
    clock: dict[str, float] = {}
    plain_assign = criterion.assign

    def timed_assign(*args):
        t = time.perf_counter()
        result = plain_assign(*args)
        clock["assign"] = time.perf_counter() - t
        return result

    criterion.assign = timed_assign
    rows: list[dict[str, float]] = []
    for i in range(warmup + steps):
        x = torch.randn(batch, 3, size, size, generator=gen).contiguous(memory_format=fmt)
        targets = random_targets(batch, size, model.num_classes, gen)
        t0 = time.perf_counter()
        outputs = model(x)
        t1 = time.perf_counter()
        losses = criterion(*outputs, targets)
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        if i >= warmup:
            rows.append({"step": t4 - t0, "forward": t1 - t0, "assign": clock["assign"],
                         "loss": t2 - t1 - clock["assign"], "backward": t3 - t2,
                         "optimizer": t4 - t3})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return {"model": preset, "size": size, "batch": batch, "channels_last": channels_last,
            "median_s": med,
            "step_s": [r["step"] for r in rows], "load_avg_1m": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["rtmdet-tiny", "rtmdet-s"])
    p.add_argument("--sizes", nargs="+", type=int, default=[320, 640])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layouts", nargs="+", default=["channels_last", "nchw"],
                   choices=["nchw", "channels_last"],
                   help="memory formats to time (the trainer's default is channels_last, "
                        "train.channels_last)")
    p.add_argument("--out", default="benchmarks/results/train_step.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    print(f"training step, bs {args.batch}, AdamW, fp32, {args.threads} threads, median of "
          f"{args.steps} after {args.warmup} warm-up")
    head = "| model | size | layout | step s | " + \
        " | ".join(f"{k} s" for k in PHASES) + " | load 1m |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for size in args.sizes:
        for preset, layout in [(m, lay) for m in args.models for lay in args.layouts]:
            r = time_steps(preset, size, args.batch, args.steps, args.warmup,
                           layout == "channels_last")
            results.append(r)
            m = r["median_s"]
            print(f"| {preset} | {size} | {layout} | {m['step']:.3f} | "
                  + " | ".join(f"{m[k]:.3f}" for k in PHASES) + f" | {r['load_avg_1m']:.2f} |",
                  flush=True)
    atomic_write_json(args.out, {"benchmark": "train_step", "threads": args.threads,
                                 "command": " ".join(sys.argv),
                                 "steps": args.steps, "warmup": args.warmup,
                                 "results": results, "env": envinfo.collect()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
