"""The bookkeeping of ``benchmarks/vs_official.py`` (the official side itself needs the oracle
venv and is not run here): the interleaving order, round-paired ratios, and the statistics the
tables print, on hand-computed cases."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vs():
    spec = importlib.util.spec_from_file_location("vs_official", REPO / "benchmarks/vs_official.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_official"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_interleave_rotates_the_order_and_keeps_blocks_per_round(vs):
    calls = []

    def cell(name):
        def run(n):
            calls.append((name, n))
            return [float(len(calls))] * n
        return run
    out = vs.interleave({"a": cell("a"), "b": cell("b"), "c": cell("c")}, rounds=3, block=2,
                        pause=0)
    assert [c for c, _ in calls] == list("abc" "bca" "cab")
    assert all(n == 2 for _, n in calls)
    assert out["a"] == [[1.0, 1.0], [6.0, 6.0], [8.0, 8.0]]


def test_paired_ratio_is_per_round_then_median(vs):
    slow = [[2.0, 2.0, 4.0], [9.0], [3.0, 3.0]]
    fast = [[1.0, 1.0, 1.0], [3.0], [6.0, 6.0]]
    r = vs.paired_ratio(slow, fast)
    assert r["rounds"] == [2.0, 3.0, 0.5]
    assert (r["median"], r["min"], r["max"]) == (2.0, 0.5, 3.0)


def test_cell_stats(vs):
    s = vs.cell_stats([[1.0, 2.0, 3.0], [4.0, 5.0]])
    assert s["median"] == 3.0 and s["n"] == 5
    assert s["round_medians"] == [2.0, 4.5]
    assert s["p10"] <= 1.5 and s["p90"] >= 4.5


def test_report_marks_paths_the_official_lacks(vs):
    cell = {"median": 0.1, "p10": 0.09, "p90": 0.11}
    ratio = {"median": 1.0, "min": 0.9, "max": 1.1}
    cells = {f"{side}/{k}": cell for side, ks in vs.INFER_CELLS.items() for k in ks}
    row = {"model": "rtmdet-tiny", "size": 640, "threads": 2, "official_best_fp32": "ort",
           "cells": cells, "max_abs_diff_vs_official_plain": {k: 0.0 for k in cells},
           "ratios_same_path": {k: ratio for k in vs.INFER_CELLS["official"]},
           "ratios_vs_official_best": {k: ratio for k in cells if k.startswith("ours/")},
           "fastest": {"official": "official/ort", "ours": "ours/ov_bf16", "ratio": ratio}}
    lines = vs.report({"inference": [row]}, None)
    int8 = next(line for line in lines if line.startswith("| onnxruntime int8"))
    assert int8.split("|")[2].strip() == "—"        # no official int8 cell is invented
    assert "official best fp32 path = onnxruntime fp32" in "\n".join(lines)
    assert "fastest: official onnxruntime fp32, ours OpenVINO bf16: 1.00× [0.90–1.10]" in lines


def test_fastest_pairs_each_sides_fastest_cell(vs):
    times = {"official/a": [[3.0], [3.0]], "official/b": [[2.0], [3.0]],
             "ours/a": [[1.0], [2.0]], "ours/b": [[2.0], [2.0]]}
    f = vs.fastest(times)
    assert (f["official"], f["ours"]) == ("official/b", "ours/a")   # medians 2.5 vs 1.5
    assert f["ratio"]["rounds"] == [2.0, 1.5]


def test_time_calls_discards_one_call_and_cycling_items_wraps(vs):
    import vs_official_stats as st         # on sys.path once vs_official is loaded
    calls = []
    secs = st.time_calls(lambda: calls.append(1), 3)
    assert len(calls) == 4 and len(secs) == 3 and all(s >= 0 for s in secs)
    item = st.cycling_items(["a", "b", "c"], warmup=2)       # "a", "b" used by the warm-up
    assert [item() for _ in range(4)] == ["c", "a", "b", "c"]
