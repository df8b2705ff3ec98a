"""Peak memory and time of the assigner on one crowded image (issue 10, "Scale").

Usage: ``python benchmarks/assigner_memory.py [--gts 500] [--size 640] [--chunks 500 256 64]
[--runs 3] [--threads 2] [--out benchmarks/results/assigner_memory.json]``

One image at 640 (8400 priors at strides 8/16/32), 80 classes, 500 random gt boxes, random
logits and predicted boxes. Every chunk size runs in a fresh subprocess so that the peak
resident set (``resource.getrusage``'s ``ru_maxrss``, which never decreases) belongs to that
mode alone; we report it above the resident set measured just before the first call
(tracemalloc cannot see torch's C++ allocations). ``--chunks`` ≥ gts means unchunked.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch


from rtmdet.assigners.dsla import DynamicSoftLabelAssigner
from rtmdet.geometry.boxes import make_priors


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(gts: int, size: int, chunk: int, runs: int, threads: int) -> dict:
    """Runs in the subprocess: build inputs, note RSS, assign ``runs`` times."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    shapes = [(size // s, size // s) for s in (8, 16, 32)]
    points, strides = make_priors(shapes, (8, 16, 32))
    priors = torch.cat([points, strides[:, None]], 1)
    p = len(priors)
    logits = torch.randn(p, 80, generator=gen)
    dist = torch.rand(p, 4, generator=gen) * strides[:, None] * 4
    pred = torch.cat([points - dist[:, :2], points + dist[:, 2:]], 1)
    wh = torch.rand(gts, 2, generator=gen) * 0.2 * size + 4
    xy = torch.rand(gts, 2, generator=gen) * (size - wh)
    gt = torch.cat([xy, xy + wh], 1)
    labels = torch.randint(0, 80, (gts,), generator=gen)
    assigner = DynamicSoftLabelAssigner(max_gts_per_chunk=chunk)
    before = _current_rss_mib()
    peak_before = _rss_mib()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = assigner.assign(logits, priors, pred, gt, labels)
        times.append(time.perf_counter() - t)
    return {"chunk": chunk, "priors": p, "gts": gts, "time_s": statistics.median(times),
            "times_s": times, "rss_before_mib": before,
            "peak_above_before_mib": _rss_mib() - max(before, 0.0),
            "peak_rss_mib": _rss_mib(), "peak_rss_before_mib": peak_before,
            "positives": int((result.gt_inds >= 0).sum()),
            "gt_inds_checksum": int(result.gt_inds.sum())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gts", type=int, default=500)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--chunks", nargs="+", type=int, default=[500, 256, 64])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/assigner_memory.json")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.gts, args.size, args.child, args.runs, args.threads)))
        return
    from rtmdet.utils.io import atomic_write_json
    rows = []
    for chunk in args.chunks:
        cmd = [sys.executable, __file__, "--gts", str(args.gts), "--size", str(args.size),
               "--runs", str(args.runs), "--threads", str(args.threads), "--child", str(chunk)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["load_avg_1m"] = os.getloadavg()[0]
        rows.append(row)
    ref = rows[0]["gt_inds_checksum"], rows[0]["positives"]
    print(f"assigner, 1 image, {args.size}px ({rows[0]['priors']} priors), 80 classes, "
          f"{args.gts} gts, {args.threads} threads, median of {args.runs}")
    print("| gts per chunk | time s | peak RSS above inputs MiB | peak RSS MiB | positives | "
          "same assignment as first row | load 1m |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        same = (r["gt_inds_checksum"], r["positives"]) == ref
        label = f"{r['chunk']} (unchunked)" if r["chunk"] >= args.gts else str(r["chunk"])
        print(f"| {label} | {r['time_s']:.3f} | {r['peak_above_before_mib']:.0f} | "
              f"{r['peak_rss_mib']:.0f} | {r['positives']} | {same} | {r['load_avg_1m']:.2f} |")
    from rtmdet.utils import envinfo
    atomic_write_json(args.out, {"benchmark": "assigner_memory", "rows": rows,
                                 "command": " ".join(sys.argv), "env": envinfo.collect()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
