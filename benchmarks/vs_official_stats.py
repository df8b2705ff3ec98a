"""The statistics and tables of ``benchmarks/vs_official.py``: per-cell spread, round-paired
ratios, each side's fastest path, and the markdown the run prints and stores. Kept apart from
the driver so the bookkeeping is tested without the official code (tests/bench)."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

OPENVINO_ON_OFFICIAL = ("ov_fp32", "ov_bf16")
INFER_CELLS = {"official": ("plain", "fused_cl", "ort", "bf16", *OPENVINO_ON_OFFICIAL),
               "ours": ("plain", "fused_cl", "ort", "bf16", "int8", "ov_fp32", "ov_bf16")}
LABELS = {"plain": "eval, plain", "fused_cl": "BN folded + channels-last", "ort": "onnxruntime fp32",
          "bf16": "torch bf16 autocast (folded, CL)", "int8": "onnxruntime int8 (QDQ)",
          "ov_fp32": "OpenVINO fp32", "ov_bf16": "OpenVINO bf16",
          "train": "train step", "data": "stage-1 pipeline item"}


def time_calls(run: Callable[[], Any], n: int) -> list[float]:
    """Seconds of ``n`` calls after one untimed call (it absorbs the switch between thread
    pools and processes). Both sides time through this (the official worker imports this
    module too: it needs nothing but the standard library)."""
    run()
    secs = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()
        secs.append(time.perf_counter() - t0)
    return secs


def cycling_items(dataset: Any, warmup: int) -> Callable[[], Any]:
    """A call that returns the dataset's next item (wrapping around), after ``warmup`` untimed
    items have filled the Mosaic/MixUp caches."""
    state = {"i": 0}

    def item() -> Any:
        out = dataset[state["i"] % len(dataset)]
        state["i"] += 1
        return out
    for _ in range(warmup):
        item()
    return item


def cell_stats(per_round: list[list[float]]) -> dict[str, float]:
    flat = sorted(v for r in per_round for v in r)
    q = statistics.quantiles(flat, n=10) if len(flat) > 1 else [flat[0]] * 9
    return {"median": statistics.median(flat), "p10": q[0], "p90": q[-1], "n": len(flat),
            "round_medians": [statistics.median(r) for r in per_round]}


def paired_ratio(slow: list[list[float]], fast: list[list[float]]) -> dict[str, float]:
    """``slow`` time / ``fast`` time (> 1: ``fast`` is faster), round by round."""
    rs = [statistics.median(a) / statistics.median(b) for a, b in zip(slow, fast)]
    return {"median": statistics.median(rs), "min": min(rs), "max": max(rs), "rounds": rs}


def fastest(times: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Each side's fastest cell (any path, any runtime) and their paired ratio: what remains of
    a lead once the official network is given our best runtime too."""
    best = {side: min((k for k in times if k.startswith(side + "/")),
                      key=lambda k: cell_stats(times[k])["median"])
            for side in ("official", "ours")}
    return {**best, "ratio": paired_ratio(times[best["official"]], times[best["ours"]])}


def fmt_ratio(r: dict) -> str:
    return f"{r['median']:.2f}× [{r['min']:.2f}–{r['max']:.2f}]"


def report(res: dict, parity: dict | None) -> list[str]:
    """The markdown tables of one run (printed, and kept in the JSON)."""
    out = []
    for row in res.get("inference", []):
        c, d = row["cells"], row["max_abs_diff_vs_official_plain"]
        best = row["official_best_fp32"]
        out += [f"\n{row['model']} inference, {row['size']}² bs 1, {row['threads']} threads, "
                f"median ms [p10–p90]; ratios paired by round, median [min–max]; official best "
                f"fp32 path = {LABELS[best]}; ONNX and OpenVINO rows run each side's own "
                "exported graph", "",
                "| path | official ms | ours ms | official / ours (same path) | "
                "official best / ours | max abs Δ vs official plain (official · ours) |",
                "|---|---|---|---|---|---|"]
        for k in INFER_CELLS["ours"]:
            o, m = c.get(f"official/{k}"), c[f"ours/{k}"]
            same = row["ratios_same_path"].get(k)
            out.append(f"| {LABELS[k]} | " + (f"{o['median'] * 1e3:.1f} [{o['p10'] * 1e3:.0f}–"
                       f"{o['p90'] * 1e3:.0f}]" if o else "—") +
                       f" | {m['median'] * 1e3:.1f} [{m['p10'] * 1e3:.0f}–{m['p90'] * 1e3:.0f}] | "
                       + (fmt_ratio(same) if same else "—") + " | "
                       + fmt_ratio(row["ratios_vs_official_best"][f"ours/{k}"]) + " | "
                       + (f"{d[f'official/{k}']:.1e}" if f"official/{k}" in d else "—")
                       + f" · {d[f'ours/{k}']:.1e} |")
        f = row["fastest"]
        out += ["", f"fastest: official {LABELS[f['official'].split('/')[1]]}, ours "
                f"{LABELS[f['ours'].split('/')[1]]}: {fmt_ratio(f['ratio'])}"]
    if res.get("train_step"):
        out += ["\ntraining step (data preprocessing, forward, assigner, losses, backward, AdamW, "
                "EMA), fp32, seconds, median [p10–p90]", "",
                "| model | size | batch | official s | ours s | official / ours |",
                "|---|---|---|---|---|---|"]
        for row in res["train_step"]:
            o, m = row["cells"]["official/train"], row["cells"]["ours/train"]
            out.append(f"| {row['model']} | {row['size']} | {row['batch']} | {o['median']:.3f} "
                       f"[{o['p10']:.2f}–{o['p90']:.2f}] | {m['median']:.3f} [{m['p10']:.2f}–"
                       f"{m['p90']:.2f}] | {fmt_ratio(row['ratio'])} |")
    if res.get("data"):
        d = res["data"]
        s, r = d["samples_per_s"], d["ratio"]
        out += [f"\nstage-1 data pipeline (cached Mosaic/MixUp, {d['preset']} settings, "
                f"{d['size']} px, one process, 1 thread), samples/s per round", "",
                "| official samples/s | ours samples/s | ours / official |", "|---|---|---|",
                f"| {s['official/data']['median']:.1f} | {s['ours/data']['median']:.1f} | "
                f"{r['median']:.2f}× [{min(r['rounds']):.2f}–{max(r['rounds']):.2f}] |"]
    if parity:
        a = parity["accuracy"]
        out += [f"\naccuracy of our paths on the proxy val set ({parity['config']}, "
                f"benchmarks/precision_parity.py, {parity['time'][:10]}): AP "
                + ", ".join(f"{k} {100 * a[k]['metrics']['AP']:.2f}" for k in a)]
    return out
