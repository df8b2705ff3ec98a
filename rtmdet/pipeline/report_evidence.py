"""What a table's runs say about the paper's claims: the statistics of
:mod:`rtmdet.pipeline.report_stats` applied to the rows of an ablation table, per variant, per
table and over all tables, and the flat numeric view of them that DVC compares across
experiments.

The rows (:mod:`rtmdet.pipeline.report_rows`) call :func:`row_evidence` for their interval,
paired Δ and verdict columns; the table and the index call :func:`table_evidence` / :func:`overall_evidence`;
:func:`dvc_metrics` turns a table into ``{table: {variant: {AP: …}}}``, which ``dvc metrics
show`` flattens to ``kernel_size.k5.AP``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from .report_stats import (DELTA_METHOD, NO_EFFECT, UNRESOLVED_AP0, VERDICT_CODES,
                           bootstrap_interval, check_distinct_seeds, count_verdicts, paired_delta,
                           paired_differences, spearman, t_interval, verdict)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def losses_by_seed(runs: Path, variant: str) -> dict[int, list[float]]:
    """seed -> the training-loss column of its metrics.csv (for the seed-collision check)."""
    out: dict[int, list[float]] = {}
    for f in sorted((runs / variant).glob("seed*/metrics.csv")):
        with f.open() as fh:
            out[seed_of(f.parent)] = [float(r["loss"]) for r in csv.DictReader(fh) if r.get("loss")]
    return out


def seed_of(seed_dir: Path) -> int:
    """runs/<ablation>/<variant>/seed<k> -> k (a folder named otherwise is a layout error)."""
    name = seed_dir.name
    if not (name.startswith("seed") and name[4:].isdigit()):
        raise ValueError(f"{seed_dir}: expected a folder named seed<k>")
    return int(name[4:])


def check_seeds(runs: Path, ours: Mapping[str, Mapping[str, Any]]) -> None:
    """Fail the report when two seeds of a variant produced bit-identical metrics."""
    for name, o in ours.items():
        check_distinct_seeds(str(runs / name), o["metrics_by_seed"], losses_by_seed(runs, name))


def row_evidence(name: str, ref: str, ours: Mapping[str, Mapping[str, Any]],
                 paper_ap: float | None, paper_ref_ap: float | None,
                 margin: float) -> dict[str, Any]:
    """The statistics columns of one row: AP interval over seeds; for a non-reference variant
    the paired Δ to ``ref`` (paired t, with the bootstrap beside it) and the verdict."""
    by_seed = ours[name]["ap_by_seed"]
    ap = t_interval(list(by_seed.values()))
    row: dict[str, Any] = {"ours_AP_ci_low": ap.low, "ours_AP_ci_high": ap.high}
    # paper cells are decimals: round so 51.1 - 50.9 is 0.2, not 0.20000000000000284
    paper_delta = (round(paper_ap - paper_ref_ap, 6) if None not in (paper_ap, paper_ref_ap)
                   else None)
    if name == ref:
        return {**row, "paper_delta": None, "ours_delta": None, "ours_delta_ci_low": None,
                "ours_delta_ci_high": None, "ours_delta_boot_low": None,
                "ours_delta_boot_high": None, "pairs": len(by_seed), "verdict": "reference"}
    diffs = paired_differences(by_seed, ours[ref]["ap_by_seed"])
    d = paired_delta(by_seed, ours[ref]["ap_by_seed"])
    boot = bootstrap_interval(list(diffs.values()))
    if d.mean is None:
        v = "not run"
    elif not any(by_seed[k] or ours[ref]["ap_by_seed"][k] for k in diffs):
        # an untrained (smoke) model scores AP 0 for every seed: a zero-width interval at 0 is
        # the absence of a measurement, not an equivalence
        v = UNRESOLVED_AP0
    else:
        v = verdict(paper_delta, d, margin)
    return {**row, "paper_delta": paper_delta, "ours_delta": d.mean, "ours_delta_ci_low": d.low,
            "ours_delta_ci_high": d.high, "ours_delta_boot_low": boot[0] if boot else None,
            "ours_delta_boot_high": boot[1] if boot else None, "pairs": d.n, "verdict": v}


def _ap_pairs(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    pairs = [(_num(r["paper_AP"]), r["ours_AP_mean"]) for r in rows]
    pairs = [(p, o) for p, o in pairs if p is not None and o is not None]
    return [p for p, _ in pairs], [o for _, o in pairs]


def _delta_pairs(rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    pairs = [(r.get("paper_delta"), r.get("ours_delta")) for r in rows]
    pairs = [(p, o) for p, o in pairs if p is not None and o is not None]
    return [p for p, _ in pairs], [o for _, o in pairs]


def table_evidence(rows: Sequence[Mapping[str, Any]], margin: float) -> dict[str, Any]:
    """Per table: verdict counts and Spearman ρ of the paper's AP vs ours across variants."""
    out = {"verdicts": count_verdicts([r["verdict"] for r in rows]),
           "spearman_AP": spearman(*_ap_pairs(rows)), "equivalence_margin": margin,
           "no_effect_threshold": NO_EFFECT, "delta_method": DELTA_METHOD}
    if any("latency_verdict" in r for r in rows):       # paper-scale latency ratios measured
        out["latency_verdicts"] = count_verdicts([r.get("latency_verdict", "n/a") for r in rows])
    return out


def overall_evidence(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Over all tables: verdict counts, Spearman ρ of AP pooled over every variant (levels
    differ between tables, so this mostly ranks the tables' models) and of the paired Δs
    pooled over every non-reference variant (the within-table effects: the sharper test)."""
    rows = [r for s in summaries for r in s["rows"]]
    lat = [r["latency_verdict"] for r in rows if "latency_verdict" in r]
    return {"verdicts": count_verdicts([r["verdict"] for r in rows]),
            "latency_verdicts": count_verdicts(lat) if lat else None,
            "spearman_AP": spearman(*_ap_pairs(rows)),
            "spearman_delta": spearman(*_delta_pairs(rows)), "tables": len(summaries)}


def _clean(d: Mapping[str, Any]) -> dict[str, float]:
    """Numbers only (DVC compares numbers; None and strings would be noise or break diffs)."""
    return {k: float(v) for k, v in d.items() if _num(v) is not None}


def dvc_metrics(table: str, rows: Sequence[Mapping[str, Any]],
                evidence: Mapping[str, Any]) -> dict[str, Any]:
    """``{table: {variant: {AP, verdict[, latency_ratio]}, agrees, contradicts, unresolved}}``.
    ``AP`` is ours (mean over seeds), ``verdict`` that of its paired Δ to the reference: 1
    agrees, 0 unresolved, −1 contradicts (absent for a reference or n/a). Few numbers per
    variant, because each is a column of ``dvc exp show`` (times 59 variants): the Δ, the
    intervals, n, the per-table Spearman ρ and the paper's numbers stay in the table CSV/JSON."""
    out: dict[str, Any] = {}
    for r in rows:
        out[r["variant"]] = _clean({
            "AP": r["ours_AP_mean"], "verdict": VERDICT_CODES.get(r["verdict"]),
            # paper-scale latency relative to the reference (rtmdet bench paper-latency)
            "latency_ratio": r.get("latency_ratio")})
    v = evidence["verdicts"]
    out.update(_clean({"agrees": v["agrees"], "contradicts": v["contradicts"],
                       "unresolved": v["unresolved"]}))
    return {table: out}


def overall_dvc_metrics(overall: Mapping[str, Any]) -> dict[str, Any]:
    """The index's metrics: overall verdict counts and the two pooled rank correlations."""
    v = overall["verdicts"]
    return {"overall": _clean({"agrees": v["agrees"], "contradicts": v["contradicts"],
                               "unresolved": v["unresolved"],
                               "spearman_AP": overall["spearman_AP"]["rho"],
                               "spearman_AP_n": overall["spearman_AP"]["n"],
                               "spearman_delta": overall["spearman_delta"]["rho"],
                               "spearman_delta_n": overall["spearman_delta"]["n"]})}
