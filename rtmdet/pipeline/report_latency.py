"""The paper's *relative* latency claims checked on the paper-scale architectures
(:mod:`rtmdet.bench.paper_latency`): per variant, its latency as a ratio to its reference's, with a
95 % interval over the interleaved rounds, and a verdict as for AP.

Why ratios: the paper's milliseconds are TensorRT FP16 on an RTX 3090 and ours are onnxruntime
on a CPU, so absolute numbers cannot agree; "3-6-6-3 is about 20 % faster than 3-9-9-3" can.
Each round timed the pair ABBA (reference, variant, variant, reference), so its ratio is a
paired sample (the machine's load of that moment cancels), and the interval is a t interval of
the log-ratio over rounds, mapped back (a geometric mean with a multiplicative interval).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .spec import Experiment
from .report_stats import Interval, t_interval, verdict

NO_EFFECT = 0.02        # a paper ratio within ±2 % of 1 claims "same latency"
MARGIN = 0.05           # ... and agrees when our whole interval lies within ±5 %


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _index(lat: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    return {tuple(u): key for key, a in lat["archs"].items() for u in a["uses"]}


def latency_fields(exp: Experiment, rows: Sequence[Mapping[str, Any]],
                   lat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """variant -> the paper-scale latency columns (ms, ratio to the reference with its
    interval, the paper's ratio, verdict); variants not measured get no entry."""
    where, archs = _index(lat), lat["archs"]
    pair_ratios = {(q["variant"], q["reference"]): q["ratios"] for q in lat.get("pairs", [])}
    paper_ms = {r["variant"]: _num(r["paper_latency_ms"]) for r in rows}
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        v, ref = r["variant"], r["reference"]
        k, kref = where.get((exp.name, v)), where.get((exp.name, ref))
        if k is None:
            continue
        ms = t_interval(archs[k]["round_ms"])
        f: dict[str, Any] = {"paper_scale_ms": ms.mean, "paper_scale_ms_ci_low": ms.low,
                             "paper_scale_ms_ci_high": ms.high, "latency_rounds": ms.n,
                             "paper_latency_ratio": None, "latency_ratio": None,
                             "latency_ratio_ci_low": None, "latency_ratio_ci_high": None}
        p, pref = paper_ms.get(v), paper_ms.get(ref)
        if p is not None and pref:
            f["paper_latency_ratio"] = p / pref
        if v == ref:
            f["latency_verdict"] = "reference"
        elif kref is None:
            f["latency_verdict"] = "n/a (reference not measured)"
        elif k == kref:     # one architecture, one measurement: a ratio of exactly 1 is no test
            f.update(latency_ratio=1.0, latency_verdict="same architecture")
        elif (k, kref) not in pair_ratios:
            f["latency_verdict"] = "n/a (pair not timed)"
        else:
            ci = t_interval([math.log(q) for q in pair_ratios[(k, kref)]])
            f.update(latency_ratio=math.exp(ci.mean),
                     latency_ratio_ci_low=math.exp(ci.low) if ci.known else None,
                     latency_ratio_ci_high=math.exp(ci.high) if ci.known else None)
            claim = (math.log(f["paper_latency_ratio"]) if f["paper_latency_ratio"] else None)
            f["latency_verdict"] = verdict(claim, Interval(ci.mean, ci.low, ci.high, ci.n),
                                           math.log1p(MARGIN), math.log1p(NO_EFFECT))
        out[v] = f
    return out


def attach_latency(exp: Experiment, rows: Sequence[dict[str, Any]],
                   path: str | Path | None) -> dict[str, Any] | None:
    """Add the paper-scale latency columns to ``rows`` (in place) from the
    ``rtmdet bench paper-latency`` JSON; returns the measurement's description (no raw
    timings), or None when there is no such file."""
    if path is None:
        return None
    lat = json.loads(Path(path).read_text())
    for r in rows:
        r.update(latency_fields(exp, rows, lat).get(r["variant"], {}))
    return {k: v for k, v in lat.items() if k not in ("archs", "env")} | {
        "cpu": lat.get("env", {}).get("cpu", "?")}


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def latency_lines(exp: Experiment, rows: Sequence[Mapping[str, Any]],
                  lat: Mapping[str, Any] | None) -> list[str]:
    """The table's 'latency at paper scale' section from the rows' latency columns
    (:func:`attach_latency`; ``lat`` its description); empty when not measured."""
    fields = {r["variant"]: r for r in rows if "latency_verdict" in r}
    if lat is None or not fields:
        return []
    p = exp.paper
    lines = ["", "### Latency at paper scale: the paper's relative claims", "",
             f"Each variant's paper-scale architecture (untrained weights), {lat['size']}×"
             f"{lat['size']}, batch 1, forward only, {lat['backend']}/{lat['device']} "
             f"{lat['threads']} thread(s); every distinct architecture of all tables built "
             f"once; {lat['rounds']} rounds, each timing every compared pair ABBA (reference, "
             f"variant, variant, reference). Ratio = variant / reference per round; 95 % t "
             f"interval of the log-ratio over rounds; ms = mean of the per-round medians [95 % t "
             f"interval]. Paper: {p.latency if p and p.latency else 'not given'}. "
             f"Verdict as for AP; a paper ratio within ±{NO_EFFECT:.0%} of 1 claims the same "
             f"latency and agrees when ours lies within ±{MARGIN:.0%}. Measured on "
             f"{lat.get('cpu', 'this machine')}, {lat.get('time', '')}.", "",
             "| variant | paper ms | ours ms [95 % CI] | ratio vs ref: paper | ratio vs ref: ours "
             "[95 % CI] (rounds) | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        f = fields.get(r["variant"])
        if f is None:
            continue
        ms = (f"{f['paper_scale_ms']:.0f} [{f['paper_scale_ms_ci_low']:.0f}, "
              f"{f['paper_scale_ms_ci_high']:.0f}]" if f["paper_scale_ms_ci_low"] is not None
              else f"{f['paper_scale_ms']:.0f}")
        if f["latency_verdict"] == "reference":
            ratio, v = "reference", "—"
        else:
            ratio = _ratio(f["latency_ratio"])
            if f["latency_ratio_ci_low"] is not None:
                ratio += (f" [{f['latency_ratio_ci_low']:.2f}, {f['latency_ratio_ci_high']:.2f}]"
                          f" (n={f['latency_rounds']})")
            v = f"**{f['latency_verdict']}**"
        paper_ratio = "reference" if f["latency_verdict"] == "reference" else \
            _ratio(f["paper_latency_ratio"])
        pms = _num(r["paper_latency_ms"])
        lines.append(f"| {r['label']} | {'—' if pms is None else f'{pms:.2f}'} "
                     f"| {ms} | {paper_ratio} | {ratio} | {v} |")
    return lines
