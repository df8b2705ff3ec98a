"""The figures of the evidence: a forest plot of every variant's paired Δ (ours with its 95 %
interval, the paper's Δ on the same axis) and the baseline's AP-vs-iteration curve.

A forest plot answers the table's question at a glance — which variants moved AP, by how much
and how sure we are — so a reader does not have to parse intervals in a markdown table. The AP
curve shows whether the baseline had flattened, i.e. whether the schedule was long enough for
the comparisons to mean anything.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from rtmdet.utils.io import atomic_save_figure, pyplot

from .report_evidence import seed_of
from .resolve import metric_name
from .spec import Experiment

# metrics.csv columns that may carry a periodic validation AP (COCO AP as a fraction, the unit
# of eval.json); rows without a value are training-only rows.
VAL_COLUMNS = ("val_AP", "val_bbox_AP", "bbox_AP")


def _curve_from_metrics(path: Path) -> tuple[list[tuple[int, float]], int | None]:
    """(iteration, AP×100) points logged in metrics.csv, and its last iteration."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    points = []
    for r in rows:
        col = next((c for c in VAL_COLUMNS if (r.get(c) or "").strip()), None)
        if col is not None and r.get("global_iter"):
            points.append((int(float(r["global_iter"])), 100.0 * float(r[col])))
    last = int(float(rows[-1]["global_iter"])) if rows and rows[-1].get("global_iter") else None
    return points, last


def read_ap_curves(variant_dir: Path) -> dict[int, list[tuple[int, float]]]:
    """seed -> [(iteration, AP×100)]: periodic validation from metrics.csv when the trainer
    logged it, plus the final evaluation (eval.json) at the last training iteration."""
    curves: dict[int, list[tuple[int, float]]] = {}
    for seed_dir in sorted(variant_dir.glob("seed*"), key=lambda p: seed_of(p)):
        points, last = ([], None)
        if (seed_dir / "metrics.csv").exists():
            points, last = _curve_from_metrics(seed_dir / "metrics.csv")
        ev = seed_dir / "eval.json"
        if ev.exists():
            r = json.loads(ev.read_text())
            m = r["metrics"]
            it = r.get("global_iter", last)
            if it is not None and not any(p[0] == it for p in points):
                points.append((int(it), 100.0 * float(m["AP"] if "AP" in m else m["mAP"])))
        if points:
            curves[seed_of(seed_dir)] = sorted(points)
    return curves


def plot_ap_curve(curves: Mapping[int, Sequence[tuple[int, float]]], path: Path,
                  title: str) -> None:
    """AP (×100) vs training iteration, one line per seed; with only final evaluations the
    figure says so instead of pretending to show a curve."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    periodic = any(len(p) > 1 for p in curves.values())
    for seed, pts in sorted(curves.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if periodic else "o",
                label=f"seed {seed}", lw=1.2, ms=4)
    if not curves:
        ax.text(0.5, 0.5, "no evaluation found", ha="center", va="center",
                transform=ax.transAxes)
    elif not periodic:
        ax.text(0.02, 0.02, "final evaluation only (no periodic validation logged)",
                transform=ax.transAxes, fontsize=8, color="0.3")
    ax.set(xlabel="training iteration", ylabel="AP (×100)", title=title)
    if curves:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, path)


def plot_forest(exp: Experiment, rows: Sequence[Mapping[str, Any]], path: Path,
                scale: str) -> None:
    """One line per non-reference variant: our paired Δ (mean, 95 % interval; hollow without an
    interval) and the paper's Δ (star) on the same AP×100 axis, 0 and the equivalence margin
    marked, the verdict written at the right."""
    plt = pyplot()
    rows = [r for r in rows if r["verdict"] != "reference"]
    labels = {r["variant"]: r["label"] for r in rows}
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * max(len(rows), 1)))
    m = exp.equivalence_margin
    ax.axvspan(-m, m, color="0.9", label=f"equivalence margin ±{m:g}")
    ax.axvline(0, color="0.4", lw=1)
    ours_done = paper_done = False
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        d = r["ours_delta"]
        if d is not None:
            known = r["ours_delta_ci_low"] is not None
            err = ([[d - r["ours_delta_ci_low"]], [r["ours_delta_ci_high"] - d]] if known else None)
            ax.errorbar([d], [y + 0.12], xerr=err, fmt="o", color="tab:blue", capsize=4,
                        mfc="tab:blue" if known else "white",
                        label=None if ours_done else f"ours ({scale}), paired Δ, 95 % CI")
            ours_done = True
        if r["paper_delta"] is not None:
            ax.plot([r["paper_delta"]], [y - 0.12], "*", color="tab:red", ms=11,
                    label=None if paper_done else "paper Δ")
            paper_done = True
        ax.annotate(r["verdict"] + (f" (n={r['pairs']})" if r["pairs"] else ""), xy=(1.01, y),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8)
    if not rows:
        ax.text(0.5, 0.5, "no variant to compare", ha="center", va="center",
                transform=ax.transAxes)
    ref_label = {v: exp.variants[v].label for v in exp.variants}
    ax.set_yticks(range(len(rows)), [f"{labels[r['variant']]}\nvs {ref_label[r['reference']]}"
                                     for r in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax.set(xlabel=f"Δ vs reference: {metric_name(exp)}",
           title=f"{exp.title} ({exp.paper_ref}): paired Δ")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35 / max(len(rows), 1) - 0.2),
              ncol=3, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, path)
