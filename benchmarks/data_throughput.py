"""Stage-1 pipeline throughput, cached vs uncached Mosaic/MixUp, on the synthetic set.

Both modes run the same pipeline with the same settings and seed in one process; only
``data.cached`` differs. Uncached reads 5 images from disk per sample (4 for the Mosaic,
1 for MixUp) instead of 1. Prints samples/s for each and their ratio (measured, same run).

    .venv/bin/python benchmarks/data_throughput.py [--root data/synth_coco] [--n 200] [--size 640]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rtmdet.config import load_config
from rtmdet.data.loader import build_train_dataset
from rtmdet.data.synthetic import write_synth_coco


class Timed:
    """Wraps a pipeline step (Mosaic or MixUp) and accumulates its time, disk loads included."""

    def __init__(self, step) -> None:
        self.step, self.seconds = step, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        out = self.step(*args)
        self.seconds += time.perf_counter() - t0
        return out


def measure(cfg, n: int, warmup: int) -> tuple[float, float, float]:
    """(samples/s, Mosaic ms per 100 samples, MixUp ms per 100 samples)."""
    ds = build_train_dataset(cfg)
    for i in range(warmup):                            # fill the caches first
        ds[i % len(ds)]
    ds.mosaic, ds.mixup = Timed(ds.mosaic), Timed(ds.mixup)
    t0 = time.perf_counter()
    for i in range(n):
        ds[(warmup + i) % len(ds)]
    total = time.perf_counter() - t0
    return n / total, 1e5 * ds.mosaic.seconds / n, 1e5 * ds.mixup.seconds / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/synth_coco")
    p.add_argument("--preset", default="rtmdet-l")
    p.add_argument("--n", type=int, default=200, help="timed samples per mode")
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--repeats", type=int, default=2, help="alternate modes this many times, keep best")
    args = p.parse_args()
    torch.set_num_threads(1)
    if not (Path(args.root) / "annotations/instances_train.json").exists():
        write_synth_coco(args.root)
    rates = {True: [], False: []}
    for _ in range(args.repeats):
        for cached in (True, False):
            cfg = load_config(args.preset, {"data.root": args.root, "data.img_size": args.size,
                                            "data.cached": cached})
            rates[cached].append(measure(cfg, args.n, args.warmup))
    (c, cm, cx), (u, um, ux) = max(rates[True]), max(rates[False])
    print(f"stage-1 pipeline ({args.preset}, {args.size}px, {args.n} samples, best of {args.repeats}):")
    print(f"  cached   Mosaic/MixUp: {c:8.1f} samples/s   (Mosaic {cm:6.1f} ms/100, MixUp {cx:6.1f} ms/100)")
    print(f"  uncached Mosaic/MixUp: {u:8.1f} samples/s   (Mosaic {um:6.1f} ms/100, MixUp {ux:6.1f} ms/100)")
    print(f"  ratio cached/uncached: {c / u:8.2f}x        (Mosaic step {um / cm:.2f}x, MixUp step {ux / cx:.2f}x)")


if __name__ == "__main__":
    main()
