"""Statistics and the figure of ``benchmarks/parity_official.py``.

The two sides share no random stream (mmengine and ours seed different generators, sample the
data in different orders), so seed k of one side has nothing in common with seed k of the
other: the difference of means is tested **unpaired, with Welch's t interval** (unequal
variances, Welch–Satterthwaite degrees of freedom). Per side, the mean has the usual Student-t
interval over seeds (``rtmdet.pipeline.report_stats.t_interval``).

Verdict rule (issue 14 item 4, "ours must not be worse beyond the interval"): with
Δ = AP(ours) − AP(official) and its 95 % interval [lo, hi],
**ours not worse** when lo ≥ −margin or the interval covers 0; **ours worse** otherwise
(hi < 0 and lo < −margin); **unresolved** when an interval cannot be computed (n < 2 a side).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import t as student_t

from rtmdet.pipeline.report_stats import CONFIDENCE, t_interval
from rtmdet.utils.io import atomic_save_figure, pyplot


def side_summary(values: Sequence[float]) -> dict[str, Any]:
    """mean, 95 % t interval, sample std and the values of one side (AP ×100)."""
    iv = t_interval(list(values))
    return {"n": iv.n, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "values": [float(v) for v in values]}


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
                   ) -> dict[str, Any]:
    """mean(a) − mean(b) with Welch's t interval; low/high None when a side has n < 2."""
    na, nb = len(a), len(b)
    out: dict[str, Any] = {"test": "Welch t (unpaired)", "confidence": confidence,
                           "delta": float(np.mean(a) - np.mean(b)) if na and nb else None,
                           "ci_low": None, "ci_high": None, "df": None}
    if na < 2 or nb < 2:
        return out
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        out.update(ci_low=out["delta"], ci_high=out["delta"], df=float(na + nb - 2))
        return out
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, df)) * se
    out.update(ci_low=out["delta"] - half, ci_high=out["delta"] + half, df=float(df))
    return out


def verdict(diff: dict[str, Any], margin: float) -> str:
    """The module docstring's rule."""
    lo, hi = diff["ci_low"], diff["ci_high"]
    if lo is None or hi is None:
        return "unresolved (n < 2 on a side)"
    if lo >= -margin or lo <= 0 <= hi:
        return "ours not worse"
    return "ours worse"


def plot_curve(curves: dict[int, dict[int, float]], official: Sequence[float], iters: int,
               path: str | Path) -> Path:
    """Ours: AP vs iteration per seed and their mean; official: final AP per seed at N."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    its = sorted({it for c in curves.values() for it in c})
    for seed, c in sorted(curves.items()):
        ax.plot(sorted(c), [c[i] for i in sorted(c)], lw=0.8, alpha=0.5, marker=".",
                label=f"ours seed {seed}")
    if curves:
        mean = [np.mean([c[i] for c in curves.values() if i in c]) for i in its]
        ax.plot(its, mean, lw=2, color="k", label="ours mean")
    if official:
        ax.scatter([iters] * len(official), official, marker="x", color="tab:red", zorder=3,
                   label="official, final (per seed)")
    ax.set(xlabel="iteration", ylabel="COCO box AP ×100 (val, EMA weights)",
           title="RTMDet-tiny on the proxy set: ours vs official")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path)
