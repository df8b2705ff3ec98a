"""The evidence of the tables in words: interval cells, the table header's statement of the
method, and the index's verdict summary (per table and over all tables).

Separate from :mod:`rtmdet.pipeline.report_evidence` (the numbers) so that the wording a reader
sees can change without touching the statistics, and vice versa.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .report_evidence import overall_evidence
from .report_stats import (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, DELTA_METHOD,
                           NO_EFFECT)


def interval_text(mean: float | None, low: float | None, high: float | None, n: int,
                  signed: bool = False) -> str:
    """'31.0 [18.3, 43.7] (n=2)'; one seed has no interval: '31.0 (n=1, no interval)'."""
    if mean is None:
        return "—"
    f = "{:+.1f}" if signed else "{:.1f}"
    if low is None or high is None:
        return f"{f.format(mean)} (n={n}, no interval)"
    return f"{f.format(mean)} [{f.format(low)}, {f.format(high)}] (n={n})"


def ap_and_delta_cells(r: Mapping[str, Any]) -> tuple[str, str]:
    """A row's 'ours AP [CI]' cell and its three 'Δ vs ref: paper | ours [CI] | verdict' cells."""
    ours = (interval_text(r["ours_AP_mean"], r["ours_AP_ci_low"], r["ours_AP_ci_high"],
                          r["seeds"]) if r["ours_AP_mean"] is not None
            else f"not run: {r['not_run']}" if r.get("not_run") else "not run")
    if r["verdict"] == "reference":
        return ours, f"reference | reference (n={r['pairs']}) | —"
    paper_d = "—" if r["paper_delta"] is None else f"{r['paper_delta']:+.1f}"
    ours_d = (interval_text(r["ours_delta"], r["ours_delta_ci_low"], r["ours_delta_ci_high"],
                            r["pairs"], signed=True) if r["ours_delta"] is not None else "—")
    return ours, f"{paper_d} | {ours_d} | **{r['verdict']}**"


def evidence_lines(margin: float) -> list[str]:
    """The table header's bullets that say how Δ, intervals and verdicts are computed."""
    pct = f"{100 * CONFIDENCE:.0f} %"
    return [
        f"- **Δ vs ref**: AP of the variant minus AP of its reference row (the paper's, and ours "
        f"*paired*: seed k minus seed k over the seeds both ran, since seed k shares data order "
        f"and initialisation); interval: {DELTA_METHOD} of the per-seed differences (a "
        f"percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}, is in the "
        f"CSV/JSON as `ours_delta_boot_*`)",
        f"- **Verdict** ({pct} interval of our Δ): **agrees** = excludes 0 on the paper's side; "
        f"**contradicts** = excludes 0 on the other side; **unresolved** = covers 0 (or one pair "
        f"only: 'unresolved (n=1)'; AP 0 on both sides: 'unresolved (AP 0)'); a paper |Δ| ≤ {NO_EFFECT} AP is a *no effect* claim: "
        f"**agrees (no effect)** when our whole interval lies within the equivalence margin "
        f"±{margin:g} AP (`equivalence_margin` of the experiment file)",
    ]


def _rho(s: Mapping[str, Any]) -> str:
    return "n/a" if s["rho"] is None else f"{s['rho']:+.2f}"


def verdict_cell(evidence: Mapping[str, Any]) -> str:
    """One index cell: 'a / c / u | ρ (n)' of a table."""
    v, rho = evidence["verdicts"], evidence["spearman_AP"]
    no_effect = f" (no effect {v['agrees_no_effect']})" if v["agrees_no_effect"] else ""
    return (f"{v['agrees']}{no_effect} / {v['contradicts']} / {v['unresolved']} "
            f"| {_rho(rho)} (n={rho['n']})")


def _latency_summary(v: Mapping[str, int] | None) -> list[str]:
    if not v:
        return []
    return ["", f"Relative latency claims at paper scale (ratios to the reference, "
            f"`rtmdet bench paper-latency`): agrees {v['agrees']} (of which same latency "
            f"{v['agrees_no_effect']}) · contradicts {v['contradicts']} · unresolved "
            f"{v['unresolved']}."]


def index_verdict_lines(summaries: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict]:
    """The index's summary of verdicts and rank correlations over all training tables, and the
    numbers it states (for the overall DVC metrics)."""
    overall = overall_evidence(summaries)
    v = overall["verdicts"]
    lines = ["", "## Verdicts over all tables", "",
             f"Over {overall['tables']} table(s): **agrees {v['agrees']}** (of which no effect "
             f"{v['agrees_no_effect']}) · **contradicts {v['contradicts']}** · **unresolved "
             f"{v['unresolved']}** · n/a {v['n/a']} (no paper Δ or not run). Spearman ρ of the "
             f"paper's AP vs ours pooled over all variants: {_rho(overall['spearman_AP'])} "
             f"(n={overall['spearman_AP']['n']}; across tables this mostly ranks model sizes); of "
             f"the paper's Δ vs our paired Δ pooled over all non-reference variants: "
             f"{_rho(overall['spearman_delta'])} (n={overall['spearman_delta']['n']}).",
             *_latency_summary(overall.get("latency_verdicts")),
             "", f"Verdicts use the {DELTA_METHOD} interval of the paired per-seed Δ; each table "
             f"states its equivalence margin for the paper's no-effect claims (|Δ| ≤ {NO_EFFECT} "
             f"AP)."]
    return lines, overall
