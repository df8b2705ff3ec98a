"""The statistics behind every ablation table: intervals over seeds, paired differences,
verdicts, rank correlation, and the check that seeds really differ.

Why these and not a p-value per row: a table compares a handful of seeds per variant, and the
reader needs to know *how large* an effect could be, not only whether it is non-zero. So each
variant gets a 95 % t interval of its mean over seeds; each non-reference variant gets the
**paired** difference to its reference (seed k minus seed k, because seed k of every variant
shares its data order and initialisation stream, which removes most of the seed-to-seed
variation from the difference) with a paired-t interval, and a percentile bootstrap of the same
pairs (fixed seed) as a second opinion. The verdict uses the paired-t interval: with 3–5 pairs a
bootstrap can only resample a few distinct sets and its interval is too narrow.

Kept free of the table code so each rule can be tested on hand-computed numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import rankdata
from scipy.stats import t as student_t

CONFIDENCE = 0.95
NO_EFFECT = 0.2             # AP points: a paper Δ at most this large is a "no effect" claim
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
DELTA_METHOD = "paired t (95 %)"
_EPS = 1e-9                 # paper cells are decimals: 51.1 - 50.9 must count as 0.2

AGREES, NO_EFFECT_AGREES = "agrees", "agrees (no effect)"
CONTRADICTS, UNRESOLVED = "contradicts", "unresolved"
UNRESOLVED_N1 = "unresolved (n=1)"
VERDICT_CODES = {AGREES: 1, NO_EFFECT_AGREES: 1, CONTRADICTS: -1, UNRESOLVED: 0, UNRESOLVED_N1: 0}


class SeedCollisionError(ValueError):
    """Two seeds of one variant gave bit-identical results: the seed reaches neither the
    model nor the data, so the 'seeds' are one run repeated and every interval is a lie."""


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided interval; ``low``/``high`` are None when n < 2."""
    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value (scipy), e.g. 4.303 for df=2 at 95 %."""
    return float(student_t.ppf(0.5 + confidence / 2, df))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean ± t_{df=n-1} · s / √n over seeds (sample std, ddof=1)."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = float(np.mean(values))
    if n == 1:
        return Interval(mean, None, None, 1)
    half = t_quantile(n - 1, confidence) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_differences(ours: Mapping[int, float], ref: Mapping[int, float]) -> dict[int, float]:
    """seed -> ours[seed] − ref[seed], over the seeds both have (an unpaired seed is dropped,
    never compared with another seed)."""
    return {s: ours[s] - ref[s] for s in sorted(set(ours) & set(ref))}


def paired_delta(ours: Mapping[int, float], ref: Mapping[int, float],
                 confidence: float = CONFIDENCE) -> Interval:
    """Paired-t interval of the mean per-seed difference (the verdict's interval)."""
    return t_interval(list(paired_differences(ours, ref).values()), confidence)


def bootstrap_interval(diffs: Sequence[float], confidence: float = CONFIDENCE,
                       resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile bootstrap of the mean of paired differences (fixed seed: the same runs
    always give the same table). None below 2 pairs."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def verdict(paper_delta: float | None, ours: Interval, margin: float,
            no_effect: float = NO_EFFECT) -> str:
    """Does our paired Δ interval support the paper's Δ?

    - n < 2 pairs: 'unresolved (n=1)' (one pair has no interval);
    - the paper's |Δ| ≤ ``no_effect`` (0.2 AP) is a *no effect* claim: 'agrees (no effect)'
      when our whole interval lies within ±margin (the experiment's ``equivalence_margin``, AP
      points; latency ratios pass log-ratios, margins and thresholds);
    - otherwise 'agrees' when the interval excludes 0 on the paper's side, 'contradicts' when
      it excludes 0 on the other side (for a paper Δ of exactly 0, any interval excluding 0 and
      leaving the margin), 'unresolved' when it covers 0.
    """
    if paper_delta is None or ours.mean is None:
        return "n/a"
    if not ours.known:
        return UNRESOLVED_N1
    lo, hi = ours.low, ours.high
    if abs(paper_delta) <= no_effect + _EPS and -margin <= lo and hi <= margin:
        return NO_EFFECT_AGREES
    if lo > 0 or hi < 0:
        side = 1 if lo > 0 else -1
        if abs(paper_delta) <= _EPS:
            return CONTRADICTS
        return AGREES if side == (1 if paper_delta > 0 else -1) else CONTRADICTS
    return UNRESOLVED


def count_verdicts(verdicts: Sequence[str]) -> dict[str, int]:
    """agrees (incl. no-effect) / contradicts / unresolved (incl. n=1) / n/a counts."""
    out = {"agrees": 0, "agrees_no_effect": 0, "contradicts": 0, "unresolved": 0, "n/a": 0}
    for v in verdicts:
        if v in (AGREES, NO_EFFECT_AGREES):
            out["agrees"] += 1
            out["agrees_no_effect"] += v == NO_EFFECT_AGREES
        elif v == CONTRADICTS:
            out["contradicts"] += 1
        elif v in (UNRESOLVED, UNRESOLVED_N1):
            out["unresolved"] += 1
        elif v != "reference":
            out["n/a"] += 1
    return out


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their ranks (scipy's rankdata 'average')."""
    return rankdata(np.asarray(values, dtype=float), method="average")


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Spearman's ρ (Pearson correlation of average ranks, so ties are handled) and n;
    ρ is None below 3 pairs or when either side is constant (no ranking to compare)."""
    if len(x) != len(y):
        raise ValueError("spearman: x and y differ in length")
    n = len(x)
    if n < 3:
        return {"rho": None, "n": n}
    rx, ry = average_ranks(x), average_ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return {"rho": None, "n": n}
    return {"rho": float(np.corrcoef(rx, ry)[0, 1]), "n": n}


def _degenerate(metrics: Mapping[str, Any]) -> bool:
    """An evaluation with nothing detected (every metric 0, or COCO's -1 for 'no such
    objects') is the same for any seed: equal metrics then prove nothing about the seed."""
    return all(isinstance(v, (int, float)) and v in (0, -1) for v in metrics.values())


def check_distinct_seeds(where: str, metrics: Mapping[int, Mapping[str, Any]],
                         losses: Mapping[int, Sequence[float]] | None = None) -> None:
    """Raise :class:`SeedCollisionError` when two seeds of one variant have bit-identical
    evaluation metrics. Metrics that are all zero (an untrained smoke model) are only a
    collision when the training losses are identical too (or not logged)."""
    losses = losses or {}
    seeds = sorted(metrics)
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            if dict(metrics[a]) != dict(metrics[b]):
                continue
            if _degenerate(metrics[a]) and a in losses and b in losses \
                    and list(losses[a]) != list(losses[b]):
                continue
            raise SeedCollisionError(
                f"{where}: seeds {a} and {b} produced bit-identical metrics "
                f"({', '.join(f'{k}={v}' for k, v in list(metrics[a].items())[:3])}, …): the seed "
                f"does not reach the model or the data, so these are one run, not {len(seeds)}")
