"""``rtmdet report``: the paper's ablation tables and figures, regenerated from our runs.

    rtmdet report table experiments/kernel_size.yaml --runs runs/kernel_size --out reports \\
        --scale smoke --scale-note "..." --data synthetic [--mlflow]
    rtmdet report timing cache_loading_time --timing runs/cache_loading_time/timing.json \\
        --out reports --scale smoke
    rtmdet report index reports/tables/*.json --out reports

Every table puts the paper's number next to ours (mean and 95 % interval over seeds), and for
each variant the paired Δ to its reference (seed k vs seed k) with its interval next to the
paper's Δ, and a *verdict*: agrees / contradicts / unresolved
(:mod:`rtmdet.pipeline.report_evidence`). (The rows, verdicts included, come from
:mod:`rtmdet.pipeline.report_rows`; this module renders and writes them.) At smoke scale only the plumbing is meaningful, so each table states the data set,
schedule, test setting and latency protocol it was made with. Paper cells the sources do not
give stay 'not found'; params/FLOPs are ours at paper scale (640, COCO classes) whatever the run
scale, so they are comparable with the paper's at any scale.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rtmdet.engine.tracking_store import (PARENT_TAG, client, experiment_note,
                                         get_or_create_experiment, get_or_create_parent, retry)
from rtmdet.evaluation.coco import FAST_SETTINGS
from rtmdet.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, csv_text

from .report_evidence import check_seeds, dvc_metrics, overall_dvc_metrics, table_evidence
from .report_figures import plot_losses, plot_per_class_ap, plot_speed_accuracy, plot_table
from .report_forest import plot_ap_curve, plot_forest, read_ap_curves
from .report_latency import attach_latency, latency_lines
from .report_rows import build_rows, collect, has_masks
from .report_timing import index_lines
from .report_verdicts import (ap_and_delta_cells, evidence_lines, index_verdict_lines,
                              verdict_cell)
from .resolve import metric_name, paper_only_rows
from .spec import Experiment

DATA_NOTES = {"synthetic": "synthetic COCO-format set (embedded generator)",
              "coco": "COCO 2017 (train2017 / val2017)",
              "synthetic_dota": "synthetic DOTA-format scenes (embedded generator), split into "
                                "patches (single- / multi-scale)",
              "dota": "DOTA-v1.0 (train / val), split into patches (single- / multi-scale)"}
FIELDS = ("variant", "label", "paper_AP", "ours_AP_mean", "ours_AP_std", "ours_AP_ci_low",
          "ours_AP_ci_high", "seeds", "delta_AP", "reference", "paper_delta", "ours_delta",
          "ours_delta_ci_low", "ours_delta_ci_high", "ours_delta_boot_low", "ours_delta_boot_high",
          "pairs", "verdict", "paper_params_M", "ours_params_M",
          "paper_flops_G", "ours_flops_G", "paper_latency_ms", "ours_latency_ms", "latency_backend")
MASK_FIELDS = ("paper_mask_AP", "ours_mask_AP_mean", "ours_mask_AP_std", "delta_mask_AP")


def _fields(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """RTMDet-Ins tables carry mask AP columns too; the others keep the detection columns."""
    return FIELDS + MASK_FIELDS if rows and "ours_mask_AP_mean" in rows[0] else FIELDS


# ----------------------------------------------------------------------------- rendering
def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _schedule(runs: Path) -> str:
    """What the runs actually were, read from a run's saved config (not from what we meant)."""
    cfgs = sorted(runs.glob("*/seed*/config.yaml"))
    if not cfgs:
        return "no runs"
    c = yaml.safe_load(cfgs[0].read_text())
    t, d = c["train"], c["data"]
    iters = f"≤{t['max_iters_per_epoch']} iterations" if t.get("max_iters_per_epoch") else "full epochs"
    return (f"{t['epochs']} epochs ({iters} each, last {t['stage2_epochs']} in stage 2), batch "
            f"{t['batch_size']}, {d['img_size']} px, backbone widen {c['model']['backbone']['widen_factor']}"
            f" (first variant), EMA {'on' if t['ema'] else 'off'}, {t['optimizer']} lr {t['base_lr']} "
            f"per {t['base_batch_size']}")


def render_markdown(exp: Experiment, rows: list[dict[str, Any]], extra: list[dict[str, Any]],
                    meta: dict[str, Any]) -> str:
    setting = {"ablation": "ablation (score 0.05, top 100)",
               "main": "main (score 0.001, NMS 0.65, top 300)",
               "dota": "DOTA (patches, score 0.05, rotated NMS 0.1, top 2000; merged per image)"
               }[exp.test_setting]
    masks = has_masks(exp)
    p = exp.paper
    lines = [f"# {exp.title} ({exp.paper_ref})", "", exp.description, "",
             f"- **Data**: {meta['data']} · **scale**: {meta['scale']} — {meta['scale_note']}",
             f"- **Schedule (ours)**: {meta['schedule']}",
             f"- **Test setting**: {setting}; paper: {p.setting if p else 'n/a'}",
             f"- **AP**: {metric_name(exp)}"
             f"{'; mask AP: COCO segm AP (×100)' if masks else ''}; ours: mean [95 % t interval] "
             f"over seeds (n seeds); 'ours − paper' is the level difference (scale-dependent)",
             *evidence_lines(exp.equivalence_margin),
             f"- **Params/FLOPs**: ours at paper scale ("
             f"{'1024×1024, 15 DOTA classes' if exp.test_setting == 'dota' else '640×640, 80 classes'}"
             f"; FLOPs = multiply-adds) "
             f"vs the paper's; **latency**: paper {p.latency if p and p.latency else 'not given'}; "
             f"ours as stated per row (forward only, batch 1, median)", "",
             "| variant | paper AP | ours AP [95 % CI] | ours − paper | "
             + ("paper mask AP | ours mask AP | Δ mask | " if masks else "")
             + "Δ vs ref: paper | Δ vs ref: ours [95 % CI] (pairs) | verdict "
             "| params M (paper / ours) "
             "| FLOPs G (paper / ours) | latency ms (paper / ours) | our latency backend |",
             "|---|---|---|---|" + ("---|---|---|" if masks else "") + "---|" * 7]
    for r in rows:
        ours, d = ap_and_delta_cells(r)
        mask = ""
        if masks:
            om = (f"{r['ours_mask_AP_mean']:.1f} ± {r['ours_mask_AP_std']:.1f}"
                  if r["ours_mask_AP_mean"] is not None else "not run")
            mask = f"{_fmt(r['paper_mask_AP'])} | {om} | {_fmt(r['delta_mask_AP'])} | "
        lines.append(f"| {r['label']} | {_fmt(r['paper_AP'])} | {ours} | {_fmt(r['delta_AP'])} | "
                     f"{mask}{d} "
                     f"| {_fmt(r['paper_params_M'], 2)} / {_fmt(r['ours_params_M'], 2)} "
                     f"| {_fmt(r['paper_flops_G'], 2)} / {_fmt(r['ours_flops_G'], 2)} "
                     f"| {_fmt(r['paper_latency_ms'], 2)} / {_fmt(r['ours_latency_ms'], 2)} "
                     f"| {r['latency_backend']} |")
    for r in extra:
        mask = f"{_fmt(r.get('mask_AP'))} | — | — | " if masks else ""
        lines.append(f"| {r['label']} | {_fmt(r.get('AP'))} | not run: {r['reason']} | — "
                     f"| {mask}— | — | — "
                     f"| {_fmt(r.get('params_M', '—'), 2)} / — | {_fmt(r.get('flops_G', '—'), 2)} / — "
                     f"| {_fmt(r.get('latency_ms', '—'), 2)} / — | — |")
    ev = meta["evidence"]
    v, rho = ev["verdicts"], ev["spearman_AP"]
    rho_text = "n/a" if rho["rho"] is None else f"{rho['rho']:+.2f}"
    lines += ["", f"**Verdicts**: agrees {v['agrees']} (of which no effect {v['agrees_no_effect']})"
              f" · contradicts {v['contradicts']} · unresolved {v['unresolved']} · n/a {v['n/a']}. "
              f"**Spearman ρ** (paper AP vs ours, across variants): "
              f"{rho_text} (n={rho['n']}).",
              *latency_lines(exp, rows, meta.get("paper_latency")),
              "", f"Paper numbers: `paper/{p.csv}` (confidence per row there)." if p else "",
              "", f"Paired Δ per variant, ours beside the paper's: "
              f"![forest](../figures/{exp.name}_forest.png)", "",
              f"AP of `{exp.baseline}` during training (per seed): "
              f"![AP curve](../figures/{exp.name}_ap_curve.png)", "",
              f"![{exp.name}](../figures/{exp.name}.png)", "",
              f"Training loss: ![loss](../figures/{exp.name}_loss.png) · "
              f"{'predictions (or per-class AP)' if exp.test_setting == 'dota' else 'precision-recall'} of "
              f"`{exp.baseline}`: ![pr](../figures/{exp.name}_pr.png)", ""]
    return "\n".join(lines)


def copy_pr_curve(exp: Experiment, runs: Path, path: Path) -> None:
    # COCO evals draw a PR curve; the DOTA flow draws its merged rotated predictions instead.
    curves = (sorted((runs / exp.baseline).glob("seed*/pr_curve.png"))
              or sorted((runs / exp.baseline).glob("seed*/predictions.png")))
    reports = sorted((runs / exp.baseline).glob("seed*/eval.json"))
    if not curves and reports and exp.test_setting == "dota":
        plot_per_class_ap(json.loads(reports[0].read_text()), path,
                          f"{exp.name}/{exp.baseline}: per-class AP (no prediction to draw)")
        return
    if not curves:
        raise FileNotFoundError(f"{runs / exp.baseline}/seed*/pr_curve.png (or predictions.png)")
    atomic_write_bytes(path, curves[0].read_bytes())


def write_table(exp: Experiment, runs: Path, out: Path, scale: str, scale_note: str,
                data: str, paper_latency: Path | None = None) -> dict[str, Any]:
    ours = collect(exp, runs)
    for name, o in ours.items():
        wrong = o["settings"] - {exp.test_setting}
        if wrong:  # the paper's main and ablation settings must never be mixed in one table
            raise ValueError(f"{runs / name}: evaluated in the {wrong} setting, table needs "
                             f"{exp.test_setting!r}")
    check_seeds(runs, ours)     # before anything is written: a collided seed voids the table
    rows, extra = build_rows(exp, runs), paper_only_rows(exp)
    latency = attach_latency(exp, rows, paper_latency)      # paper-scale latency columns
    evidence = table_evidence(rows, exp.equivalence_margin)
    meta = {"data": DATA_NOTES[data], "scale": scale, "scale_note": scale_note,
            "schedule": _schedule(runs), "paper_latency": latency}
    tables, figures = out / "tables", out / "figures"
    atomic_write_text(tables / f"{exp.name}.md",
                      render_markdown(exp, rows, extra, {**meta, "evidence": evidence}))
    atomic_write_text(tables / f"{exp.name}.csv", csv_text(rows, _fields(rows)))
    atomic_write_json(out / "metrics" / f"{exp.name}.json", dvc_metrics(exp.name, rows, evidence))
    plot_table(exp, rows, figures / f"{exp.name}.png", scale)
    plot_forest(exp, rows, figures / f"{exp.name}_forest.png", scale)
    plot_ap_curve(read_ap_curves(runs / exp.baseline), figures / f"{exp.name}_ap_curve.png",
                  f"{exp.name}: AP of {exp.baseline} during training ({scale})")
    plot_losses(exp, runs, figures / f"{exp.name}_loss.png")
    copy_pr_curve(exp, runs, figures / f"{exp.name}_pr.png")
    summary = {"ablation": exp.name, "title": exp.title, "paper_ref": exp.paper_ref,
               "test_setting": exp.test_setting, **meta,
               "ablation_settings": FAST_SETTINGS if exp.test_setting == "ablation" else None,
               "evidence": evidence, "rows": rows, "paper_only": extra}
    atomic_write_json(tables / f"{exp.name}.json", summary)
    return summary


# ----------------------------------------------------------------------------- MLflow
def link_mlflow(exp: Experiment, summary: dict[str, Any], table: Path) -> str:
    """Attach the table to the ablation's parent run and mark it FINISHED. The (variant, seed)
    runs are its children from their creation on; runs of this ablation without a parent (logged
    by an older version of this code) are nested here, afterwards."""
    c = client()
    note = experiment_note(exp.title, exp.description, exp.paper_ref)
    exp_id = retry(get_or_create_experiment, c, exp.name, note)
    parent = retry(get_or_create_parent, c, exp_id, exp.name, note)
    for run in c.search_runs([exp_id], f"tags.ablation = '{exp.name}' and tags.job != 'ablation'",
                             max_results=5000):
        tags = run.data.tags
        if PARENT_TAG not in tags and "rtmdet.superseded_by" not in tags:
            c.set_tag(run.info.run_id, PARENT_TAG, parent)
    for key in ("agrees", "contradicts", "unresolved"):
        c.log_metric(parent, f"verdicts_{key}", summary["evidence"]["verdicts"][key])
    c.log_artifact(parent, str(table))
    c.set_terminated(parent)
    return parent


# ----------------------------------------------------------------------------- index
def write_index(summaries: list[dict[str, Any]], out: Path) -> Path:
    """reports/README.md: the verdicts over all tables, one section per table (setting,
    verdicts, rank correlation, links, figures); timing tables (``kind: timing``, no training)
    get their own short table. Also writes the overall DVC metrics (metrics/overall.json)."""
    timings = [s for s in summaries if s.get("kind") == "timing"]
    summaries = [s for s in summaries if s.get("kind") != "timing"]
    sizes = next((s for s in summaries if s["ablation"] == "model_sizes"), None)
    lines = ["# RTMDet ablations: reproduced tables and figures", "",
             "Generated by `rtmdet report` from the runs of the Snakemake pipeline "
             "(`snakemake ablation_tables`, `make tables`); do not edit by hand. Each table states "
             "its data set, schedule, test setting and latency protocol. Paper numbers come from "
             "`paper/*.csv`; cells the sources do not give are 'not found'.", ""]
    scales = sorted({(s["scale"], s["data"]) for s in summaries})
    for scale, data in scales:
        lines.append(f"- scale **{scale}** on {data}")
    if any(s["scale"] == "smoke" for s in summaries):
        lines += ["", "> **Smoke scale**: every variant is trained for a handful of iterations on "
                  "synthetic data to prove the pipeline end to end. Its AP and verdicts carry no "
                  "evidence about the paper's claims; params/FLOPs (at paper scale) do."]
    verdict_lines, overall = index_verdict_lines(summaries)
    atomic_write_json(out / "metrics" / "overall.json", overall_dvc_metrics(overall))
    lines += verdict_lines
    lines += ["", "| table | paper | test setting | variants | verdicts: agrees / contradicts / "
              "unresolved | Spearman ρ (n) | files |",
              "|---|---|---|---|---|---|---|"]
    for s in summaries:
        n = s["ablation"]
        lines.append(f"| [{s['title']}](tables/{n}.md) | {s['paper_ref']} | {s['test_setting']} "
                     f"| {len(s['rows'])} | {verdict_cell(s['evidence'])} "
                     f"| [md](tables/{n}.md) · [csv](tables/{n}.csv) · [json](tables/{n}.json) · "
                     f"[figure](figures/{n}.png) · [forest](figures/{n}_forest.png) · "
                     f"[AP curve](figures/{n}_ap_curve.png) · [loss](figures/{n}_loss.png) · "
                     f"[PR](figures/{n}_pr.png) |")
    lines += index_lines(timings)
    if sizes:
        lines += ["", "## Speed vs accuracy (Fig. 1)", "",
                  "![speed-accuracy](figures/speed_accuracy.png)"]
    for s in summaries:
        n = s["ablation"]
        lines += ["", f"## {s['title']} ({s['paper_ref']})", "", f"[table](tables/{n}.md)", "",
                  f"![{n} forest](figures/{n}_forest.png)", "", f"![{n}](figures/{n}.png)"]
    plot_speed_accuracy(sizes or {"rows": [], "scale": "-", "data": "-"},
                        out / "figures" / "speed_accuracy.png")
    return atomic_write_text(out / "README.md", "\n".join(lines) + "\n")
