"""Stage-1 pipeline throughput, cached vs uncached Mosaic/MixUp, one process, 640×480 JPEGs.

Both modes run the same pipeline (load → Mosaic → RandomResize → RandomCrop → HSV → flip → pad
→ MixUp → tensors) with the same settings and seed in one process; only ``data.cached``
differs. Uncached reads 5 images from disk per sample (4 for the Mosaic, 1 for MixUp) instead
of 1. The image set is the synthetic generator at a fixed 480×640 (COCO's most common shape),
JPEG quality 92, written once under ``--root``. Modes are alternated ``--repeats`` times and the
best rate of each is kept; the ratio is measured in the same run. Every step's output image is
checked to stay uint8 (the official pipeline promotes to float/int64 in places).

    .venv/bin/python benchmarks/data_throughput.py [--root data/bench_coco_480x640] [--n 200]
        [--preset rtmdet-l] [--cv2-threads 1] [--out benchmarks/results/data_throughput.json]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtmdet import envinfo  # noqa: E402
from rtmdet.config import load_config  # noqa: E402
from rtmdet.data.loader import build_train_dataset  # noqa: E402
from rtmdet.data.synthetic import write_synth_coco  # noqa: E402
from rtmdet.io import atomic_write_json  # noqa: E402

# Official mmdetection 3.3.0, same machine class, one process (issue 10), samples/s.
OFFICIAL = {"cached": (22.5, 24.0), "uncached": (17.1, 17.6)}
SHAPE = (480, 640)


class Timed:
    """Wraps a pipeline step (Mosaic or MixUp): accumulates its time (disk loads included) and
    records the dtypes of the images it returns."""

    def __init__(self, step) -> None:
        self.step, self.seconds, self.dtypes = step, 0.0, set()

    def __call__(self, *args):
        t0 = time.perf_counter()
        out = self.step(*args)
        self.seconds += time.perf_counter() - t0
        self.dtypes.add(str(out["img"].dtype))
        return out


def measure(cfg, n: int, warmup: int) -> dict:
    ds = build_train_dataset(cfg)
    for i in range(warmup):                            # fill the caches first
        ds[i % len(ds)]
    ds.mosaic, ds.mixup = Timed(ds.mosaic), Timed(ds.mixup)
    dtypes = set()
    t0 = time.perf_counter()
    for i in range(n):
        dtypes.add(str(ds[(warmup + i) % len(ds)]["img"].dtype))
    total = time.perf_counter() - t0
    return {"samples_per_s": n / total, "mosaic_ms": 1e3 * ds.mosaic.seconds / n,
            "mixup_ms": 1e3 * ds.mixup.seconds / n, "rest_ms": 1e3 * total / n
            - 1e3 * (ds.mosaic.seconds + ds.mixup.seconds) / n,
            "image_dtypes": sorted(dtypes | ds.mosaic.dtypes | ds.mixup.dtypes)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/bench_coco_480x640")
    p.add_argument("--images", type=int, default=200, help="images to generate if --root is empty")
    p.add_argument("--preset", default="rtmdet-l")
    p.add_argument("--n", type=int, default=200, help="timed samples per mode and repeat")
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--repeats", type=int, default=2, help="alternate modes this many times, keep best")
    p.add_argument("--cv2-threads", type=int, default=1,
                   help="OpenCV threads (1 = truly single-threaded process; -1 = OpenCV default)")
    p.add_argument("--out", default="benchmarks/results/data_throughput.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(args.cv2_threads)
    if not (Path(args.root) / "annotations/instances_train.json").exists():
        write_synth_coco(args.root, n_train=args.images, n_val=0, shape=SHAPE, workers=2)
    runs: dict[str, list[dict]] = {"cached": [], "uncached": []}
    for _ in range(args.repeats):
        for mode in runs:
            cfg = load_config(args.preset, {"data.root": args.root, "data.img_size": args.size,
                                            "data.cached": mode == "cached"})
            runs[mode].append(measure(cfg, args.n, args.warmup))
    best = {m: max(r, key=lambda x: x["samples_per_s"]) for m, r in runs.items()}
    ratio = best["cached"]["samples_per_s"] / best["uncached"]["samples_per_s"]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None

    print(f"stage-1 pipeline, {args.preset} settings, {args.size}px output, {SHAPE[1]}x{SHAPE[0]} "
          f"JPEGs, one process, cv2 threads {cv2.getNumThreads()}, {args.n} samples, best of "
          f"{args.repeats}; load avg {load}")
    head = (f"{'mode':<10}{'samples/s':>11}{'Mosaic ms':>11}{'MixUp ms':>10}{'rest ms':>9}"
            f"{'official samples/s':>20}{'vs official':>13}   image dtypes")
    print(head + "\n" + "-" * len(head))
    for mode, r in best.items():
        lo, hi = OFFICIAL[mode]
        print(f"{mode:<10}{r['samples_per_s']:>11.1f}{r['mosaic_ms']:>11.2f}{r['mixup_ms']:>10.2f}"
              f"{r['rest_ms']:>9.2f}{f'{lo}–{hi}':>20}{r['samples_per_s'] / hi:>12.2f}x   "
              f"{', '.join(r['image_dtypes'])}")
    print(f"cached / uncached: {ratio:.2f}x (official {OFFICIAL['cached'][0] / OFFICIAL['uncached'][1]:.2f}"
          f"–{OFFICIAL['cached'][1] / OFFICIAL['uncached'][0]:.2f}x)")
    atomic_write_json(args.out, {
        "benchmark": "data_throughput", "preset": args.preset, "size": args.size,
        "image_shape_hw": list(SHAPE), "n": args.n, "repeats": args.repeats,
        "cv2_threads": cv2.getNumThreads(), "best": best, "all_runs": runs,
        "ratio_cached_uncached": ratio, "official_samples_per_s": OFFICIAL,
        "load_avg_at_end": load, "env": envinfo.collect(), "command": " ".join(sys.argv)})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
