"""``rtmdet report timing``: the paper's tables that are timings, not trainings.

The one such table is the cache loading time of Mosaic and MixUp (mmyolo's RTMDet notes,
``paper/ablation_f2_cache_loading_time.csv``): ms per 100 images with and without the caches.
Ours comes from ``rtmdet bench data`` (:mod:`rtmdet.bench.data_throughput`), rendered next to the
paper's with the cached/uncached speed-up of each, because the paper's milliseconds come from
an unstated machine and protocol while the speed-up is comparable. The table says what our
numbers include (the JPEG decode of the extra images), on which images, machine and threads.

Kept free of :mod:`rtmdet.pipeline.report` imports so that :mod:`rtmdet.pipeline.dvc` can read
:data:`TIMING_TABLES` (report → experiment_dvc → here would otherwise be a cycle).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rtmdet.utils.io import atomic_write_json, atomic_write_text, csv_text

# table name -> its paper CSV (under paper/); Snakemake, DVC and the index read this list.
TIMING_TABLES = {"cache_loading_time": "ablation_f2_cache_loading_time.csv"}
TITLE = "Cache loading time of Mosaic and MixUp"
PAPER_REF = "cache loading-time table"
TRANSFORMS = {"Mosaic": "mosaic", "MixUp": "mixup"}        # paper name -> our JSON prefix
FIELDS = ("transform", "use_cache", "paper_ms_per_100_images", "ours_ms_per_100_images",
          "ours_load_ms_per_100_images", "ours_images_loaded_per_image", "paper_speedup",
          "ours_speedup", "ours_speedup_without_loading")


def paper_times(path: str | Path) -> dict[tuple[str, bool], float]:
    """(transform, cached) -> the paper's ms per 100 images."""
    with open(path, newline="") as f:
        return {(r["transform"], r["use_cache"].strip().lower() == "yes"):
                float(r["ms_per_100_images"]) for r in csv.DictReader(f)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def build_rows(timing: dict[str, Any], paper: dict[tuple[str, bool], float]) -> list[dict]:
    """One row per transform × cache; speed-ups (uncached / cached time) on the cached rows."""
    best, rows = timing["best"], []
    for name, key in TRANSFORMS.items():
        ours, load, images = {}, {}, {}
        for cached in (False, True):
            r = best["cached" if cached else "uncached"]
            ours[cached] = 100 * r[f"{key}_ms"]
            load[cached] = 100 * r[f"{key}_load_ms"]
            images[cached] = r[f"{key}_loads"] / r["samples"]
        for cached in (False, True):
            row = {"transform": name, "use_cache": "yes" if cached else "no",
                   "paper_ms_per_100_images": paper.get((name, cached)),
                   "ours_ms_per_100_images": ours[cached],
                   "ours_load_ms_per_100_images": load[cached],
                   "ours_images_loaded_per_image": images[cached],
                   "paper_speedup": None, "ours_speedup": None,
                   "ours_speedup_without_loading": None}
            if cached:
                row["paper_speedup"] = _ratio(paper.get((name, False)), paper.get((name, True)))
                row["ours_speedup"] = _ratio(ours[False], ours[True])
                row["ours_speedup_without_loading"] = _ratio(ours[False] - load[False],
                                                             ours[True] - load[True])
            rows.append(row)
    return rows


def _f(x: float | None, digits: int = 1, unit: str = "") -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def render_markdown(rows: list[dict], timing: dict[str, Any], scale: str, paper_csv: str) -> str:
    env, (h, w) = timing.get("env", {}), timing["image_shape_hw"]
    load = " ".join(timing["load_avg_at_end"]) if timing.get("load_avg_at_end") else "n/a"
    lines = [
        f"# {TITLE} ({PAPER_REF})", "",
        "Time spent in the Mosaic and in the MixUp step per 100 output images, without and with "
        "the caches. Uncached, each Mosaic reads 3 extra images from disk and each MixUp 1; "
        "cached, both take them from a pool of recently loaded samples. Not a training "
        "ablation: no model is involved.", "",
        f"- **Ours**: `rtmdet bench data` — stage-1 pipeline with {timing['preset']} settings at "
        f"{timing['size']} px on {timing['images']} synthetic {w}×{h} JPEGs (quality "
        f"{timing.get('jpeg_quality', 92)}, embedded generator); {timing['n']} timed samples "
        f"per mode after {timing['warmup']} untimed ones (caches filled), modes alternated, "
        f"fastest of {timing['repeats']} run(s) per mode; **scale**: {scale}",
        f"- **Machine / process**: {env.get('cpu', '?')}, {env.get('logical_cpus', '?')} "
        f"logical CPUs ({env.get('affinity_cpus', '?')} usable), load average at the end "
        f"{load}; one process, items read straight from the dataset (no DataLoader workers), "
        f"torch 1 thread, OpenCV {timing['cv2_threads']} thread(s); Python "
        f"{env.get('python', '?')}, torch {env.get('torch', '?')}, commit "
        f"{env.get('git_commit', '?')}, {timing.get('time', '')}",
        "- **What is timed (ours)**: the whole Mosaic / MixUp step *including reading and "
        "JPEG-decoding the extra images it loads* (uncached); the 'loading' column is that "
        "part, so 'without loading' is the mixing itself. The current image's own load is in "
        "neither step. ms per 100 images = mean ms per output sample × 100; a sample whose "
        "crop kept no box is redrawn, so a step can run a little more than once per output "
        "image (hence slightly over 3 loads per uncached Mosaic).",
        f"- **Paper**: `paper/{paper_csv}`; its source (mmyolo's RTMDet description) gives "
        "only 'ms / 100 imgs': machine, "
        "image set and whether loading/decoding is included are not stated, so compare the "
        "speed-ups rather than the milliseconds."]
    if scale == "smoke":
        lines.append("- Few samples (smoke scale) vary from run to run; "
                     "`benchmarks/data_throughput.py --n 200 --repeats 2` is the careful "
                     "measurement.")
    lines += [
        "", "| transform | cache | paper ms / 100 images | ours ms / 100 images "
        "| ours: of which loading | ours: images loaded per output image |",
        "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['transform']} | {r['use_cache']} | {_f(r['paper_ms_per_100_images'])} "
                     f"| {_f(r['ours_ms_per_100_images'])} "
                     f"| {_f(r['ours_load_ms_per_100_images'])} "
                     f"| {_f(r['ours_images_loaded_per_image'], 2)} |")
    lines += ["", "Speed-up from the cache (uncached time / cached time of the same step):", "",
              "| transform | paper | ours | ours without loading |", "|---|---|---|---|"]
    for r in rows:
        if r["use_cache"] == "yes":
            lines.append(f"| {r['transform']} | {_f(r['paper_speedup'], 2, '×')} "
                         f"| {_f(r['ours_speedup'], 2, '×')} "
                         f"| {_f(r['ours_speedup_without_loading'], 2, '×')} |")
    rate = {m: timing["best"][m]["samples_per_s"] for m in ("cached", "uncached")}
    lines += ["", f"Whole stage-1 pipeline (ours, same runs): {rate['cached']:.1f} samples/s "
              f"cached, {rate['uncached']:.1f} uncached "
              f"({timing['ratio_cached_uncached']:.2f}×).", ""]
    return "\n".join(lines)


def write_timing_table(name: str, timing_path: str | Path, paper_csv: str | Path, out: str | Path,
                       scale: str) -> dict[str, Any]:
    """reports/tables/<name>.{md,csv,json} from a ``rtmdet bench data`` JSON; the summary JSON
    (``kind: timing``) is what the index reads."""
    timing = json.loads(Path(timing_path).read_text())
    paper_csv, tables = Path(paper_csv), Path(out) / "tables"
    rows = build_rows(timing, paper_times(paper_csv))
    atomic_write_text(tables / f"{name}.md", render_markdown(rows, timing, scale, paper_csv.name))
    atomic_write_text(tables / f"{name}.csv", csv_text(rows, FIELDS))
    summary = {"ablation": name, "kind": "timing", "title": TITLE, "paper_ref": PAPER_REF,
               "scale": scale, "data": f"{timing['images']} synthetic "
               f"{timing['image_shape_hw'][1]}×{timing['image_shape_hw'][0]} JPEGs",
               "paper_csv": f"paper/{paper_csv.name}", "timing_json": str(timing_path),
               "rows": rows,
               "speedup": {r["transform"]: {k: r[k] for k in FIELDS[-3:]}
                           for r in rows if r["use_cache"] == "yes"},
               "measurement": {k: timing.get(k) for k in (
                   "preset", "size", "images", "image_shape_hw", "n", "warmup", "repeats",
                   "cv2_threads", "ratio_cached_uncached", "load_avg_at_end", "env", "time")}}
    atomic_write_json(tables / f"{name}.json", summary)
    return summary


def index_lines(summaries: list[dict[str, Any]]) -> list[str]:
    """The timing tables' part of reports/README.md (empty when there are none)."""
    if not summaries:
        return []
    lines = ["", "Timing tables (no training; the speed-up is the comparable number):", "",
             "| table | paper | measured on | speed-up with cache (paper / ours) | files |",
             "|---|---|---|---|---|"]
    for s in summaries:
        n = s["ablation"]
        speed = ", ".join(f"{t} {_f(v['paper_speedup'], 2, '×')} / {_f(v['ours_speedup'], 2, '×')}"
                          for t, v in s["speedup"].items())
        lines.append(f"| [{s['title']}](tables/{n}.md) | {s['paper_ref']} | {s['data']}, scale "
                     f"{s['scale']} | {speed} | [md](tables/{n}.md) · [csv](tables/{n}.csv) · "
                     f"[json](tables/{n}.json) |")
    return lines
