"""One table for issue 10: every speed row against the issue's target, from the JSON files the
individual benchmarks wrote (run them together with ``benchmarks/run_cpu.sh``).

The "official" column is the figure issue 10 quoted (another day, not measured in the run);
the targets were derived from it. Ours against the official code timed side by side in one run
is ``benchmarks/vs_official.py`` (``vs_official.json``, which ``run_cpu.sh`` also writes).

    .venv/bin/python benchmarks/summary.py [--results benchmarks/results]
        [--out benchmarks/results/summary.md]

Each row names the JSON it came from and the command that produced it (stored in that JSON).
The verdict column compares with the issue's target, not with a fixed number in this script's
output: if a benchmark did not run, its rows say so instead of showing stale numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from rtmdet.utils.io import atomic_write_json, atomic_write_text

# Issue 10's official mmdetection 3.3.0 figures (same machine class) and our targets.
FORWARD = [  # (model, runner key, label, official range ms, target ms)
    ("rtmdet-tiny", "torch", "forward 640², bs 1, plain eval", (169, 172), None),
    ("rtmdet-s", "torch", "forward 640², bs 1, plain eval", (287, 293), None),
    ("rtmdet-tiny", "torch_fused_cl", "forward, BN folded + channels-last", (123, 125), 135),
    ("rtmdet-s", "torch_fused_cl", "forward, BN folded + channels-last", (209, 210), 235),
    ("rtmdet-tiny", "onnxruntime", "forward, onnxruntime", (104, 111), 95),
    ("rtmdet-s", "onnxruntime", "forward, onnxruntime", (178, 188), 165),
]
TRAIN = [  # (model, size, official range s, target s: ≥ 1.2× official throughput)
    ("rtmdet-tiny", 320, (0.60, 0.67), 0.50), ("rtmdet-s", 320, (0.96, 1.04), 0.80),
    ("rtmdet-tiny", 640, (2.44, 2.52), 2.03), ("rtmdet-s", 640, (3.77, 3.97), 3.14),
]


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _when(results: Path, name: str) -> str:
    """The JSON's modification time (UTC): rows from different sessions are visible as such."""
    path = results / name
    return (time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime))
            if path.exists() else "")


def rows(results: Path) -> list[dict]:
    out: list[dict] = []
    fl = _load(results / "forward_latency.json")
    by_model = {r["model"]: r for r in fl["rows"]} if fl else {}
    for model, key, label, off, target in FORWARD:
        r = by_model.get(model)
        ours = r[key]["median_ms"] if r else None
        quiet = r[key].get("quiet_median_ms") if r else None
        out.append({"what": label, "model": model, "ours": ours, "unit": "ms", "quiet": quiet,
                    "official": off, "target": target, "lower_is_better": True,
                    "source": "forward_latency.json", "command": fl and fl.get("command")})
    ts = _load(results / "train_step.json")
    for model, size, off, target in TRAIN:
        hits = [r for r in (ts or {}).get("results", []) if r["model"] == model
                and r["size"] == size and r["batch"] == 4]
        default = [r for r in hits if r["channels_last"]] or hits   # the trainer's layout
        ours = default[0]["median_s"]["step"] if default else None
        layout = (" (channels-last)" if default[0]["channels_last"] else " (NCHW)") if default else ""
        out.append({"what": f"training step, bs 4, {size}², AdamW{layout}", "model": model,
                    "ours": ours, "unit": "s", "official": off, "target": target,
                    "lower_is_better": True, "source": "train_step.json",
                    "command": ts and ts.get("command")})
    dt = _load(results / "data_throughput.json")
    for mode, off, target in (("cached", (22.5, 24.0), 48.0), ("uncached", (17.1, 17.6), None)):
        ours = dt["best"][mode]["samples_per_s"] if dt else None
        out.append({"what": f"stage-1 pipeline, one process, 640×480 JPEGs, {mode}",
                    "model": dt["preset"] if dt else "", "ours": ours, "unit": "samples/s",
                    "official": off, "target": target, "lower_is_better": False,
                    "source": "data_throughput.json", "command": dt and dt.get("command")})
    out.append({"what": "stage-1 pipeline, cached / uncached", "model": dt["preset"] if dt else "",
                "ours": dt["ratio_cached_uncached"] if dt else None, "unit": "×",
                "official": (round(22.5 / 17.6, 2), round(24.0 / 17.1, 2)), "target": 1.3,
                "lower_is_better": False, "source": "data_throughput.json",
                "command": dt and dt.get("command")})
    am = _load(results / "assigner_memory.json")
    for r in (am or {}).get("rows", [])[:3]:
        out.append({"what": f"assigner, 500 gts, 640² (8400 priors), chunk {r['chunk']}: peak "
                            f"MiB above inputs", "model": "—", "ours": r["peak_above_before_mib"],
                    "unit": "MiB", "official": None, "target": None, "lower_is_better": True,
                    "time_s": r["time_s"], "source": "assigner_memory.json",
                    "command": am.get("command")})
    return out


def verdict(r: dict) -> str:
    if r["ours"] is None:
        return "not run"
    if r["target"] is None:
        return "—"
    ok = r["ours"] <= r["target"] if r["lower_is_better"] else r["ours"] >= r["target"]
    return ("✓ " if ok else "✗ ") + ("≤ " if r["lower_is_better"] else "≥ ") + f"{r['target']:g}"


def render(table: list[dict]) -> str:
    lines = ["| what | model | ours | official as quoted by issue 10 (not this run) | target | "
             "source (UTC) |",
             "|---|---|---|---|---|---|"]
    for r in table:
        ours = "not run" if r["ours"] is None else f"{r['ours']:.3g} {r['unit']}"
        if r.get("quiet") is not None:
            ours += f" (quiet rounds {r['quiet']:.3g})"
        if "time_s" in r:
            ours += f" ({r['time_s']:.2f} s)"
        off = "—" if r["official"] is None else f"{r['official'][0]:g}–{r['official'][1]:g}"
        lines.append(f"| {r['what']} | {r['model']} | {ours} | {off} | {verdict(r)} | "
                     f"`{r['source']}` {r.get('measured_utc', '')} |")
    lines += ["", "ours = median of all runs; for the forward rows \"quiet rounds\" is the median over "
              "the fastest third of the round-robin rounds (the VM switches between two speed "
              "states ~25 % apart); the target verdict uses the all-runs median."]
    cmds = sorted({(r["source"], r["command"]) for r in table if r["command"]})
    lines += ["", "Commands:"] + [f"- `{src}`: `{cmd}`" for src, cmd in cmds]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="benchmarks/results", type=Path)
    p.add_argument("--out", default="benchmarks/results/summary.md", type=Path)
    args = p.parse_args()
    table = rows(args.results)
    for r in table:
        r["measured_utc"] = _when(args.results, r["source"])
    text = render(table)
    print(text)
    atomic_write_text(args.out, text)
    atomic_write_json(args.out.with_suffix(".json"), {"rows": table})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
