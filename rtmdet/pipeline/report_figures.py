"""Figures of ``rtmdet report``: per-ablation AP/latency plots, training curves, and the
speed-accuracy figure of the model sizes (the paper's Fig. 1, ours next to the paper's)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rtmdet.utils.io import atomic_save_figure, pyplot

from .spec import Experiment


def _num(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def ci_err(rows: list[dict[str, Any]], mean: str = "ours_AP_mean",
           key: str = "ours_AP") -> list[list[float]]:
    """matplotlib's asymmetric error bars from each row's 95 % interval (0 where n < 2)."""
    def half(r: dict[str, Any], side: str) -> float:
        bound = r.get(f"{key}_ci_{side}")
        return 0.0 if bound is None else abs(bound - r[mean])
    return [[half(r, "low") for r in rows], [half(r, "high") for r in rows]]


def plot_table(exp: Experiment, rows: list[dict[str, Any]], path: Path, scale: str) -> None:
    """Left: our AP per variant (mean, 95 % interval) with the paper's AP on a second axis.
    Right: AP vs our latency (the speed-accuracy view of the ablation)."""
    plt = pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x = range(len(rows))
    ours = [r["ours_AP_mean"] or 0.0 for r in rows]
    a.bar(x, ours, yerr=ci_err([{**r, "ours_AP_mean": m} for r, m in zip(rows, ours)]),
          color="tab:blue", alpha=.7, label=f"ours ({scale}), 95 % CI")
    a.set_xticks(list(x), [r["variant"] for r in rows], rotation=30, ha="right")
    a.set_ylabel("ours AP")
    a2 = a.twinx()
    px = [(i, r["paper_AP"]) for i, r in enumerate(rows) if _num(r["paper_AP"]) is not None]
    a2.plot([i for i, _ in px], [v for _, v in px], "r*", ms=12, label="paper")
    a2.set_ylabel("paper AP", color="r")
    a.set_title(f"{exp.paper_ref}: AP per variant")
    for r in rows:
        if r["ours_latency_ms"] is not None:
            b.scatter(r["ours_latency_ms"], r["ours_AP_mean"] or 0.0)
            b.annotate(r["variant"], (r["ours_latency_ms"], r["ours_AP_mean"] or 0.0), fontsize=8)
    backend = next((r["latency_backend"] for r in rows if r["latency_backend"] != "—"), "")
    b.set(xlabel=f"our latency, ms ({backend})", ylabel="ours AP", title="AP vs latency (ours)")
    fig.tight_layout()
    atomic_save_figure(fig, path)


def plot_losses(exp: Experiment, runs: Path, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in exp.variants:
        files = sorted((runs / name).glob("seed*/metrics.csv"))
        if files:
            with files[0].open() as f:
                hist = list(csv.DictReader(f))
            ax.plot([int(h["global_iter"]) for h in hist], [float(h["loss"]) for h in hist],
                    label=name, lw=1)
    ax.set(xlabel="iteration", ylabel="total loss", title=f"{exp.name}: training loss (first seed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path)


def plot_speed_accuracy(summary: dict[str, Any], path: Path) -> None:
    """Fig. 1: AP vs latency per model size — the paper's (TensorRT FP16 on an RTX 3090) and ours
    (the backend in the label) side by side; the two latency axes are different machines."""
    plt = pyplot()
    rows = summary["rows"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    pts = [(r["paper_latency_ms"], r["paper_AP"], r["variant"]) for r in rows
           if _num(r["paper_latency_ms"]) is not None and _num(r["paper_AP"]) is not None]
    a.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="tab:red")
    for x, y, n in pts:
        a.annotate(n, (x, y), fontsize=8)
    a.set(xlabel="latency, ms (RTX 3090, TensorRT FP16)", ylabel="COCO AP", title="paper")
    # x: the paper-scale latency when measured (rtmdet bench paper-latency), else the run's
    paper_scale = any(r.get("paper_scale_ms") is not None for r in rows)
    lat = "paper_scale_ms" if paper_scale else "ours_latency_ms"
    done = [r for r in rows if r.get(lat) is not None and r["ours_AP_mean"] is not None]
    b.errorbar([r[lat] for r in done], [r["ours_AP_mean"] for r in done],
               yerr=ci_err(done) if done else None,
               xerr=ci_err(done, lat, "paper_scale_ms") if done and paper_scale else None,
               fmt="o-", color="tab:blue", capsize=3,
               label="ours: mean AP, 95 % CI over seeds" + (" / rounds" if paper_scale else ""))
    for r in done:
        b.annotate(r["variant"], (r[lat], r["ours_AP_mean"]), fontsize=8)
    if done:
        b.legend(fontsize=7)
    backend = next((r["latency_backend"] for r in rows if r["latency_backend"] != "—"), "")
    if paper_scale:
        backend = "paper-scale architecture, 640 px, CPU: see the table"
    b.set(xlabel=f"latency, ms ({backend})", ylabel="AP",
          title=f"ours ({summary['scale']} scale, {summary['data'].split(' (')[0]})")
    fig.suptitle("Speed vs accuracy of RTMDet tiny…x")
    fig.tight_layout()
    atomic_save_figure(fig, path)


def plot_per_class_ap(report: dict[str, Any], path: Path, title: str) -> None:
    """DOTA runs whose merged predictions are too weak to draw (no box above the drawing
    threshold) still show where their mAP comes from: AP per class, with the gt counts."""
    plt = pyplot()
    per_class = report.get("per_class") or []
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(range(len(per_class)), [100.0 * r["ap"] for r in per_class], color="tab:blue")
    ax.set_xticks(range(len(per_class)), [f"{r['name']} ({r['num_gts']})" for r in per_class],
                  rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="VOC07 AP@0.5 (×100)", title=title)
    fig.tight_layout()
    atomic_save_figure(fig, path)
