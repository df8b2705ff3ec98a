"""The rows of an ablation table: our runs (AP per seed, latency, complexity) next to the
paper's numbers, with the *verdict*.

The verdict asks whether a variant's paired Δ to its reference (seed k vs seed k, with a 95 %
interval) supports the paper's Δ (:mod:`rtmdet.pipeline.report_evidence`); it is the table's
point at any scale, so it is computed here once, and :mod:`rtmdet.pipeline.report` only renders
and writes what these rows say.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .report_evidence import row_evidence, seed_of
from .resolve import not_run_reason, paper_values
from .spec import Experiment


def has_masks(exp: Experiment) -> bool:
    """RTMDet-Ins tables compare mask AP too (the paper's CSV names a mask_AP column)."""
    return exp.paper is not None and "mask_AP" in exp.paper.columns


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def _num(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def collect(exp: Experiment, runs: Path) -> dict[str, dict[str, Any]]:
    """Per variant: AP of each seed (COCO AP × 100, the paper's unit), latency, complexity."""
    cx_path = runs / "complexity.json"
    cx = json.loads(cx_path.read_text())["variants"] if cx_path.exists() else {}
    out: dict[str, dict[str, Any]] = {}
    for name in exp.variants:
        aps, mask_aps, settings, by_seed, raw = [], [], set(), {}, {}
        for ev in sorted((runs / name).glob("seed*/eval.json"), key=lambda p: seed_of(p.parent)):
            r = json.loads(ev.read_text())
            m = r["metrics"]        # COCO: AP; DOTA: mAP (VOC07 at rotated IoU 0.5)
            aps.append(100.0 * float(m["AP"] if "AP" in m else m["mAP"]))
            by_seed[seed_of(ev.parent)] = aps[-1]
            raw[seed_of(ev.parent)] = {**m, **{f"segm_{k}": v
                                               for k, v in r.get("segm_metrics", {}).items()}}
            if "segm_metrics" in r:
                mask_aps.append(100.0 * float(r["segm_metrics"]["AP"]))
            settings.add(r.get("setting", "?"))
        bench_path = runs / name / "bench.json"
        bench = json.loads(bench_path.read_text()) if bench_path.exists() else None
        c = cx.get(name)
        out[name] = {"aps": aps, "mask_aps": mask_aps, "settings": settings, "bench": bench,
                     "ap_by_seed": by_seed, "metrics_by_seed": raw,
                     "params_M": c["params"]["total"] / 1e6 if c else None,
                     "flops_G": c["flops"]["total"] / 1e9 if c else None}
    return out


def build_rows(exp: Experiment, runs: Path, scale: str | None = None) -> list[dict[str, Any]]:
    """One flat row per variant (the CSV/JSON columns): paper vs ours, intervals, paired Δ and
    verdict, so the markdown, CSV, JSON and figures all show the same numbers. A variant that
    cannot run at ``scale`` (or lacks a file it needs) has no seeds and says why (``not_run``)."""
    paper, ours = paper_values(exp), collect(exp, runs)
    mean = {v: _mean_std(o["aps"])[0] if o["aps"] else None for v, o in ours.items()}
    rows = []
    for name, v in exp.variants.items():
        o, p = ours[name], paper[name]
        ref = v.compare_to or exp.baseline
        p_ap, p_ref = _num(p.get("AP")), _num(paper[ref].get("AP"))
        o_ap = mean[name]
        b = o["bench"]
        row = {
            "variant": name, "label": v.label,
            "not_run": (not_run_reason(exp, name, scale)
                        if scale is not None and not o["aps"] else None),
            "paper_AP": p.get("AP", "no paper row") if p else "no paper row",
            "ours_AP_mean": o_ap, "ours_AP_std": _mean_std(o["aps"])[1] if o["aps"] else None,
            "seeds": len(o["aps"]), "delta_AP": o_ap - p_ap if None not in (o_ap, p_ap) else None,
            "reference": ref,
            **row_evidence(name, ref, ours, p_ap, p_ref, exp.equivalence_margin),
            "paper_params_M": p.get("params_M", "—"), "ours_params_M": o["params_M"],
            "paper_flops_G": p.get("flops_G", "—"), "ours_flops_G": o["flops_G"],
            "paper_latency_ms": p.get("latency_ms", "—"),
            "ours_latency_ms": b["latency"]["median_ms"] if b else None,
            "latency_backend": (f"{b['backend']}/{b['device']}{' fp16' if b['fp16'] else ''}, "
                                f"{b['size']}px, {b['threads']} thr") if b else "—",
        }
        if has_masks(exp):
            pm = _num(p.get("mask_AP"))
            om, osd = _mean_std(o["mask_aps"]) if o["mask_aps"] else (None, None)
            row.update({"paper_mask_AP": p.get("mask_AP", "no paper row") if p else "no paper row",
                        "ours_mask_AP_mean": om, "ours_mask_AP_std": osd,
                        "delta_mask_AP": om - pm if None not in (om, pm) else None})
        rows.append(row)
    return rows
