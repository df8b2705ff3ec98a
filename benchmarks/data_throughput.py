"""Stage-1 pipeline throughput, cached vs uncached Mosaic/MixUp, one process, 640×480 JPEGs.

Both modes run the same pipeline (load → Mosaic → RandomResize → RandomCrop → HSV → flip → pad
→ MixUp → tensors) with the same settings and seed in one process; only ``data.cached``
differs. Uncached reads 5 images from disk per sample (4 for the Mosaic, 1 for MixUp) instead
of 1. The image set is the synthetic generator at a fixed 480×640 (COCO's most common shape),
JPEG quality 92, written once under ``--root``. Modes are alternated ``--repeats`` times and the
best rate of each is kept; the ratio is measured in the same run. Every step's output image is
checked to stay uint8 (the official pipeline promotes to float/int64 in places). The
measurement itself is :mod:`rtmdet.bench.data_throughput` (also ``rtmdet bench data``, which the
pipeline's cache loading-time table uses); this script prints it as a table. Ours against the
official pipeline, timed in the same run: ``benchmarks/vs_official.py``.

    .venv/bin/python benchmarks/data_throughput.py [--root data/bench_coco_480x640] [--n 200]
        [--preset rtmdet-l] [--cv2-threads 1] [--out benchmarks/results/data_throughput.json]
"""
from __future__ import annotations

import argparse
import sys


from rtmdet.bench.data_throughput import SHAPE, add_arguments, compare, ensure_images, pin_threads
from rtmdet.utils.io import atomic_write_json

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument("--out", default="benchmarks/results/data_throughput.json")
    args = p.parse_args()
    pin_threads(args.cv2_threads)
    ensure_images(args.root, args.images, workers=2)
    res = compare(args.root, args.preset, args.size, args.n, args.warmup, args.repeats)
    best, ratio, load = res["best"], res["ratio_cached_uncached"], res["load_avg_at_end"]

    print(f"stage-1 pipeline, {args.preset} settings, {args.size}px output, {SHAPE[1]}x{SHAPE[0]} "
          f"JPEGs, one process, cv2 threads {res['cv2_threads']}, {args.n} samples, best of "
          f"{args.repeats}; load avg {load}")
    head = (f"{'mode':<10}{'samples/s':>11}{'Mosaic ms':>11}{'MixUp ms':>10}{'rest ms':>9}"
            f"   image dtypes")
    print(head + "\n" + "-" * len(head))
    for mode, r in best.items():
        print(f"{mode:<10}{r['samples_per_s']:>11.1f}{r['mosaic_ms']:>11.2f}{r['mixup_ms']:>10.2f}"
              f"{r['rest_ms']:>9.2f}   "
              f"{', '.join(r['image_dtypes'])}")
    print(f"cached / uncached: {ratio:.2f}x")
    atomic_write_json(args.out, {"benchmark": "data_throughput", **res,
                                 "command": " ".join(sys.argv)})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
