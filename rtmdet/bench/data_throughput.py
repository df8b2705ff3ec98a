"""Stage-1 pipeline throughput, cached vs uncached Mosaic/MixUp, in one process.

Why this lives in the package: the paper's cache loading-time table (mmyolo's RTMDet notes,
``paper/ablation_f2_cache_loading_time.csv``: ms per 100 images of Mosaic and MixUp with and
without the cache) is rendered by the ablation pipeline (``rtmdet bench data`` → JSON →
``rtmdet report timing``), and ``benchmarks/data_throughput.py`` prints the same measurement
next to the official throughput. One function measures for both.

Both modes run the same pipeline (load → Mosaic → RandomResize → RandomCrop → HSV → flip → pad
→ MixUp → tensors) with the same settings and seed; only ``data.cached`` differs. Uncached
reads 3 extra images from disk per Mosaic and 1 per MixUp; the Mosaic and MixUp step times
include those reads (JPEG decode included), and every read is counted, so the table can say how
many images each step loaded and how much of its time the loading was. The image set is the
synthetic generator at a fixed 480×640 (COCO's most common shape), JPEG quality 92. Items are
taken straight from the dataset (no DataLoader workers): one process, torch on one thread, and
OpenCV on ``cv2_threads``. Modes are alternated ``repeats`` times and the fastest run of each
(samples/s of the whole pipeline) is kept.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import torch

from rtmdet.config import load_config
from rtmdet.data.loader import build_train_dataset
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.utils import envinfo
from rtmdet.utils.io import write_or_print_json

SHAPE = (480, 640)                       # (H, W) of the synthetic JPEGs
MODES = ("cached", "uncached")


class LoadCounter:
    """Wraps a source's ``load``: counts the images read from disk and the seconds spent."""

    def __init__(self, load: Callable[[int], Any]) -> None:
        self.load, self.calls, self.seconds = load, 0, 0.0

    def __call__(self, index: int) -> Any:
        t0 = time.perf_counter()
        out = self.load(index)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


class Timed:
    """Wraps a pipeline step (Mosaic or MixUp): accumulates its time (disk loads included), the
    loads made inside it, and the dtypes of the images it returns (they must stay uint8)."""

    def __init__(self, step: Callable[..., dict], loads: LoadCounter) -> None:
        self.step, self.loads = step, loads
        self.seconds, self.calls, self.images, self.load_seconds = 0.0, 0, 0, 0.0
        self.dtypes: set[str] = set()

    def __call__(self, *args: Any) -> dict:
        n0, s0 = self.loads.calls, self.loads.seconds
        t0 = time.perf_counter()
        out = self.step(*args)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.images += self.loads.calls - n0
        self.load_seconds += self.loads.seconds - s0
        self.dtypes.add(str(out["img"].dtype))
        return out


def measure(cfg: Any, n: int, warmup: int) -> dict[str, Any]:
    """Time ``n`` stage-1 items of ``cfg``'s training set after ``warmup`` untimed ones (which
    fill the caches). Per-item figures: Mosaic / MixUp / rest milliseconds, images each step
    loaded from disk, and the part of the step time spent loading them."""

    ds = build_train_dataset(cfg)
    for i in range(warmup):
        ds[i % len(ds)]
    loads = LoadCounter(ds.source.load)
    ds.source.load = loads
    ds.mosaic, ds.mixup = Timed(ds.mosaic, loads), Timed(ds.mixup, loads)
    dtypes = set()
    t0 = time.perf_counter()
    for i in range(n):
        dtypes.add(str(ds[(warmup + i) % len(ds)]["img"].dtype))
    total = time.perf_counter() - t0
    mo, mx = ds.mosaic, ds.mixup
    return {"samples_per_s": n / total, "mosaic_ms": 1e3 * mo.seconds / n,
            "mixup_ms": 1e3 * mx.seconds / n,
            "rest_ms": 1e3 * total / n - 1e3 * (mo.seconds + mx.seconds) / n,
            "image_dtypes": sorted(dtypes | mo.dtypes | mx.dtypes),
            "samples": n, "mosaic_calls": mo.calls, "mixup_calls": mx.calls,
            "mosaic_loads": mo.images, "mixup_loads": mx.images, "total_loads": loads.calls,
            "mosaic_load_ms": 1e3 * mo.load_seconds / n, "mixup_load_ms": 1e3 * mx.load_seconds / n}


def ensure_images(root: str | Path, images: int, workers: int = 1) -> Path:
    """The fixed-shape synthetic set under ``root``, written once (kept if already there)."""

    root = Path(root)
    if not (root / "annotations/instances_train.json").exists():
        write_synth_coco(root, n_train=images, n_val=0, shape=SHAPE, workers=workers)
    return root


def pin_threads(cv2_threads: int) -> int:
    """torch on one thread, OpenCV on ``cv2_threads`` (1 = truly single-threaded; -1 = OpenCV's
    default); returns the OpenCV thread count in effect."""

    torch.set_num_threads(1)
    cv2.setNumThreads(cv2_threads)
    return cv2.getNumThreads()


def compare(root: str | Path, preset: str = "rtmdet-l", size: int = 640, n: int = 200,
            warmup: int = 40, repeats: int = 2) -> dict[str, Any]:
    """Both modes on the set at ``root``, alternated ``repeats`` times; the fastest run of each
    mode, every run, the cached/uncached throughput ratio and the environment, JSON-ready."""


    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for _ in range(repeats):
        for mode in MODES:
            cfg = load_config(preset, {"data.root": str(root), "data.img_size": size,
                                       "data.cached": mode == "cached"})
            runs[mode].append(measure(cfg, n, warmup))
    best = {m: max(r, key=lambda x: x["samples_per_s"]) for m, r in runs.items()}
    loadavg = Path("/proc/loadavg")
    return {"preset": preset, "size": size, "image_shape_hw": list(SHAPE), "root": str(root),
            "images": _count_images(Path(root)), "jpeg_quality": 92, "n": n, "warmup": warmup,
            "repeats": repeats, "cv2_threads": cv2.getNumThreads(), "best": best,
            "all_runs": runs,
            "ratio_cached_uncached": best["cached"]["samples_per_s"]
            / best["uncached"]["samples_per_s"],
            "load_avg_at_end": loadavg.read_text().split()[:3] if loadavg.exists() else None,
            "env": envinfo.collect(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _count_images(root: Path) -> int:
    ann = root / "annotations/instances_train.json"
    return len(json.loads(ann.read_text())["images"]) if ann.exists() else 0


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rtmdet bench data`` (also the defaults of benchmarks/data_throughput.py)."""
    p.add_argument("--root", default="data/bench_coco_480x640", help="COCO-format images timed")
    p.add_argument("--images", type=int, default=200, help="images to generate if --root is empty")
    p.add_argument("--preset", default="rtmdet-l", help="config whose data pipeline is timed")
    p.add_argument("--n", type=int, default=200, help="timed samples per mode and repeat")
    p.add_argument("--warmup", type=int, default=40, help="untimed samples first")
    p.add_argument("--size", type=int, default=640, help="training input side")
    p.add_argument("--repeats", type=int, default=2, help="alternate modes this many times, keep best")
    p.add_argument("--cv2-threads", type=int, default=1,
                   help="OpenCV threads (1 = truly single-threaded process; -1 = OpenCV default)")


def run(args: argparse.Namespace) -> int:
    """``rtmdet bench data``: measure, print one line per mode, write the JSON (``--out``)."""

    pin_threads(args.cv2_threads)
    ensure_images(args.root, args.images, workers=2)
    res = {"benchmark": "data_throughput",
           **compare(args.root, args.preset, args.size, args.n, args.warmup, args.repeats),
           "command": " ".join(["rtmdet", *sys.argv[1:]])}
    for mode, r in res["best"].items():
        print(f"{mode:<9} {r['samples_per_s']:7.1f} samples/s  Mosaic {r['mosaic_ms']:6.2f} ms "
              f"({r['mosaic_loads'] / r['samples']:.2f} loads)  MixUp {r['mixup_ms']:6.2f} ms "
              f"({r['mixup_loads'] / r['samples']:.2f} loads)  per sample")
    print(f"cached / uncached: {res['ratio_cached_uncached']:.2f}x ({res['images']} images "
          f"{SHAPE[1]}x{SHAPE[0]}, {args.n} samples, best of {args.repeats}, cv2 threads "
          f"{res['cv2_threads']})")
    write_or_print_json(res, args.out, omit=("env", "all_runs"))
    return 0
