"""Exact rotated IoU (``rtmdet.geometry.rotated_iou.rbox_iou``) against shapely on many random pairs.

Draws random rotated-box pairs in four regimes — general overlap, nested, near-identical
(tiny perturbations) and touching (shared edge or corner, IoU 0) — plus DOTA-scale coordinates
(thousands of pixels, small boxes) and near-identical large boxes at DOTA-scale coordinates,
computes IoU in float64 and float32 and with shapely's GEOS polygon overlay, prints the error
statistics per regime and dtype, and plots the error histogram (log-scale |error|) to
``docs/rotated_iou_error.png``. Nothing is asserted here; the tests hold
the tolerances (``tests/geometry/test_rotated.py``).

    .venv/bin/python benchmarks/rotated_iou_check.py [--n 20000] [--seed 0]
        [--out docs/rotated_iou_error.png] [--json stats.json]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import shapely
import torch

from rtmdet.utils.io import atomic_save_figure, atomic_write_json
from rtmdet.geometry.rotated import rbox_to_poly
from rtmdet.geometry.rotated_iou import rbox_iou


def random_rboxes(n: int, rng: np.random.Generator, span: float, size: tuple[float, float]
                  ) -> np.ndarray:
    return np.concatenate([rng.uniform(0, span, (n, 2)), rng.uniform(*size, (n, 2)),
                           rng.uniform(-math.pi / 2, math.pi / 2, (n, 1))], 1)


def regimes(n: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(a, b)`` of (n, 5) float64 boxes per regime."""
    out = {"random": (random_rboxes(n, rng, 30, (1, 20)), random_rboxes(n, rng, 30, (1, 20)))}
    a = random_rboxes(n, rng, 30, (2, 20))
    nested = a.copy()
    nested[:, 2:4] *= rng.uniform(0.1, 0.9, (n, 1))
    out["nested"] = (a, nested)
    near = a + np.concatenate([rng.normal(0, 1e-3, (n, 4)), rng.normal(0, 1e-4, (n, 1))], 1)
    out["near-identical"] = (a, near)
    c, s = np.cos(a[:, 4]), np.sin(a[:, 4])
    w, h = a[:, 2], a[:, 3]
    edge = a.copy()
    edge[:, 0] += w * c
    edge[:, 1] += w * s
    corner = a.copy()
    corner[:, 0] += w * c - h * s
    corner[:, 1] += w * s + h * c
    half = n // 2
    out["touching"] = (a, np.concatenate([edge[:half], corner[half:]]))
    big = random_rboxes(n, rng, 4000, (5, 60))
    jitter = big + np.concatenate([rng.normal(0, 5, (n, 2)), rng.normal(0, 5, (n, 2)).clip(-4, 4),
                                   rng.normal(0, 0.2, (n, 1))], 1)
    out["DOTA-scale"] = (big, jitter)
    out["near-identical DOTA"] = near_identical_dota(n, rng)
    return out


def near_identical_dota(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Large boxes far from the origin nudged by 1e-4…1e-2 px and 1e-7…1e-4 rad (a fifth of the
    components left exact): the float32 worst case, edges nearly coincident along their length."""
    a = np.concatenate([rng.uniform(500, 1000, (n, 2)), rng.uniform(10, 300, (n, 2)),
                        rng.uniform(-math.pi / 2, math.pi / 2, (n, 1))], 1)
    delta = np.concatenate([10 ** rng.uniform(-4, -2, (n, 4)), 10 ** rng.uniform(-7, -4, (n, 1))],
                           1) * rng.choice([-1.0, 1.0], (n, 5))
    delta[rng.random((n, 5)) < 0.2] = 0
    return a, a + delta


def shapely_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pa = shapely.polygons(rbox_to_poly(torch.from_numpy(a)).numpy())
    pb = shapely.polygons(rbox_to_poly(torch.from_numpy(b)).numpy())
    inter = shapely.area(shapely.intersection(pa, pb))
    union = shapely.area(pa) + shapely.area(pb) - inter
    return np.where(union > 1e-6, inter / np.maximum(union, 1e-12), 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000, help="pairs per regime")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/rotated_iou_error.png")
    p.add_argument("--json", default=None, help="also write the statistics here")
    args = p.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    stats, errors = {}, {}
    for name, (a, b) in regimes(args.n, rng).items():
        ref = shapely_iou(a, b)
        for dtype in (torch.float64, torch.float32):
            t0 = time.perf_counter()
            ours = rbox_iou(torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype),
                            aligned=True).double().numpy()
            sec = time.perf_counter() - t0
            err = np.abs(ours - ref)
            key = f"{name} {str(dtype).replace('torch.', '')}"
            errors[key] = err
            stats[key] = {"pairs": len(a), "max_abs_err": float(err.max()),
                          "mean_abs_err": float(err.mean()),
                          "p99_abs_err": float(np.quantile(err, 0.99)),
                          "mean_iou": float(ref.mean()), "us_per_pair": 1e6 * sec / len(a)}
    width = max(map(len, stats))
    print(f"{'regime dtype':<{width}}  {'pairs':>6}  {'max|err|':>9}  {'p99|err|':>9}  "
          f"{'mean|err|':>9}  {'mean IoU':>8}  {'µs/pair':>7}")
    for k, s in stats.items():
        print(f"{k:<{width}}  {s['pairs']:>6}  {s['max_abs_err']:>9.2e}  {s['p99_abs_err']:>9.2e}  "
              f"{s['mean_abs_err']:>9.2e}  {s['mean_iou']:>8.3f}  {s['us_per_pair']:>7.2f}")
    plot(errors, args.out, args.n)
    print(f"wrote {args.out}")
    if args.json:
        atomic_write_json(args.json, stats)
        print(f"wrote {args.json}")
    return 0


def plot(errors: dict[str, np.ndarray], path: str | Path, n: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110, sharey=True)
    floor = 1e-17
    bins = np.logspace(-17, -3, 57)
    for ax, dtype in zip(axes, ("float64", "float32")):
        for key, err in errors.items():
            if key.endswith(dtype):
                exact = int((err == 0).sum())
                ax.hist(np.maximum(err, floor), bins=bins, histtype="step", lw=1.3,
                        label=f"{key.rsplit(' ', 1)[0]} (max {err.max():.1e}, {exact} exact)")
        ax.axvline(1e-4, color="red", ls="--", lw=1)
        ax.text(1.2e-4, ax.get_ylim()[1] * 0.5, "tolerance 1e-4", color="red", rotation=90,
                fontsize=8)
        ax.set(xscale="log", yscale="log",
               xlabel=f"|IoU − shapely IoU|, {dtype} (0 shown at 1e-17)",
               title=f"rbox_iou vs shapely, {dtype}, {n} pairs per regime")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("pairs")
    fig.tight_layout()
    atomic_save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
