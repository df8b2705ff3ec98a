"""Paper-scale latency: each distinct architecture once (shared variants deduplicated), rounds
interleaved in a rotated order, ratios to the reference with hand-computed intervals and
verdicts, rendered into the table and the DVC metrics; one real (small) measurement."""
from __future__ import annotations

import json
import math

import pytest

from rtmdet.bench.paper_latency import Architecture, abba_rounds, measure
from rtmdet.pipeline.latency_plan import architectures, comparisons
from rtmdet.pipeline.report import write_table
from rtmdet.pipeline.report_latency import latency_fields
from rtmdet.pipeline.report_rows import build_rows
from tests.helpers.report_runs import EXPS, fake_runs


def test_each_paper_scale_architecture_is_measured_once():
    archs = architectures(EXPS.values())
    by_use = {u: a.key for a in archs.values() for u in a.uses}
    # the same RTMDet-l with 3-6-6-3 blocks, 5x5 kernels and no channel attention, three tables
    assert by_use[("kernel_size", "k5")] == by_use[("stage_depth", "d3663")] \
        == by_use[("backbone_neck_ratio", "l_47")]
    assert by_use[("kernel_size", "k3")] != by_use[("kernel_size", "k5")]
    assert not any(u[0] in ("dota", "augmentation", "optimization") for u in by_use)
    assert len(archs) == len(set(by_use.values())) < len(by_use)


def test_pairs_are_timed_abba_in_a_rotated_order():
    order: list[str] = []
    now = [0.0]
    cost = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}     # ms per call

    def step(k):
        order.append(k)
        now[0] += cost[k] / 1e3
    steps = {k: (lambda k=k: step(k)) for k in "abcd"}
    ratios, calls = abba_rounds(steps, [("b", "a"), ("c", "a")], rounds=2, clock=lambda: now[0])
    # round 0: pair 0 then pair 1; round 1 rotated; d is in no pair: timed once per round
    assert "".join(order) == "abba" + "acca" + "d" + "acca" + "abba" + "d"
    assert ratios == [[pytest.approx(2.0)] * 2, [pytest.approx(3.0)] * 2]
    assert [len(r) for r in calls["a"]] == [4, 4] and calls["d"] == [[pytest.approx(4.0)]] * 2
    archs = architectures([EXPS["kernel_size"], EXPS["stage_depth"]])
    pairs = comparisons([EXPS["kernel_size"], EXPS["stage_depth"]], archs)
    assert len(pairs) == 4      # k3, k7 vs k5; d3993, d3663_ca vs d3663 (= k5's architecture)
    assert len({ref for _, ref in pairs}) == 1     # one reference architecture for both tables


def _lat(rounds: dict[tuple[str, str], list[float]],
         ratios: dict[tuple[tuple[str, str], tuple[str, str]], list[float]]) -> dict:
    keys = {u: f"k{i}" for i, u in enumerate(rounds)}
    archs = {keys[u]: {"uses": [list(u)], "round_ms": ms} for u, ms in rounds.items()}
    pairs = [{"variant": keys[v], "reference": keys[r], "ratios": q}
             for (v, r), q in ratios.items()]
    return {"kind": "paper_latency", "size": 640, "backend": "onnxruntime", "device": "cpu",
            "threads": 1, "rounds": 3, "archs": archs, "pairs": pairs,
            "env": {"cpu": "test cpu"}, "time": "now"}


def test_ratios_intervals_and_verdicts_by_hand(tmp_path):
    exp = EXPS["stage_depth"]       # paper ms: d3993 2.6, d3663 2.11 (reference), d3663_ca 2.4
    runs = fake_runs(tmp_path, "stage_depth", {"d3993": [0.3, 0.31], "d3663": [0.3, 0.32],
                                               "d3663_ca": [0.3, 0.33]})
    rows = build_rows(exp, runs)
    ref, deep, ca = ("stage_depth", "d3663"), ("stage_depth", "d3993"), ("stage_depth", "d3663_ca")
    lat = _lat({ref: [100.0, 110.0, 90.0], deep: [120.0, 132.0, 108.0], ca: [100.0, 121.0, 81.0]},
               {(deep, ref): [1.2, 1.2, 1.2], (ca, ref): [1.0, 1.1, 0.9]})
    f = latency_fields(exp, rows, lat)
    deep, ca = f["d3993"], f["d3663_ca"]
    assert f["d3663"]["latency_verdict"] == "reference"
    assert deep["latency_ratio"] == pytest.approx(1.2)
    assert (deep["latency_ratio_ci_low"], deep["latency_ratio_ci_high"]) == \
        pytest.approx((1.2, 1.2))
    assert deep["paper_latency_ratio"] == pytest.approx(2.6 / 2.11)      # +23 %: agrees
    assert deep["latency_verdict"] == "agrees"
    logs = [0.0, math.log(1.1), math.log(0.9)]
    m = sum(logs) / 3
    s = math.sqrt(sum((x - m) ** 2 for x in logs) / 2)
    half = 4.302653 * s / math.sqrt(3)
    assert ca["latency_ratio"] == pytest.approx(math.exp(m))
    assert (ca["latency_ratio_ci_low"], ca["latency_ratio_ci_high"]) == \
        pytest.approx((math.exp(m - half), math.exp(m + half)), rel=1e-5)
    assert ca["latency_verdict"] == "unresolved"                          # covers 1
    assert ca["paper_scale_ms"] == pytest.approx(100.667, abs=1e-3)


def test_same_latency_claim_and_shared_architecture(tmp_path):
    exp = EXPS["kernel_size"]       # paper: 3x3 2.10 ms vs 5x5 2.11 ms -> a same-latency claim
    runs = fake_runs(tmp_path, "kernel_size", {"k3": [0.3, 0.31], "k5": [0.3, 0.32],
                                               "k7": [0.3, 0.33]})
    rows = build_rows(exp, runs)
    k3, k5, k7 = (("kernel_size", v) for v in ("k3", "k5", "k7"))
    lat = _lat({k5: [100.0] * 3, k3: [101.0, 99.0, 100.0], k7: [90.0, 91.0, 89.0]},
               {(k3, k5): [1.01, 0.99, 1.0], (k7, k5): [0.9, 0.91, 0.89]})  # paper +29 %, ours −10%
    f = latency_fields(exp, rows, lat)
    assert f["k3"]["latency_verdict"] == "agrees (no effect)"
    assert f["k7"]["latency_verdict"] == "contradicts"
    lat["archs"]["k0"]["uses"].append(["kernel_size", "k7"])  # k7 measured as k5's architecture
    del lat["archs"]["k2"]
    lat["pairs"] = lat["pairs"][:1]
    assert latency_fields(exp, rows, lat)["k7"]["latency_verdict"] == "same architecture"


def test_table_renders_the_latency_section_and_metrics(tmp_path):
    exp = EXPS["kernel_size"]
    runs = fake_runs(tmp_path, "kernel_size", {"k3": [0.3, 0.31], "k5": [0.3, 0.32],
                                               "k7": [0.3, 0.33]})
    k3, k5, k7 = (("kernel_size", v) for v in ("k3", "k5", "k7"))
    lat = _lat({k5: [1000.0, 1010.0, 990.0], k3: [1001.0, 1009.0, 991.0],
                k7: [1300.0, 1310.0, 1290.0]},
               {(k3, k5): [1.001, 0.999, 1.001], (k7, k5): [1.3, 1.297, 1.303]})
    (tmp_path / "latency.json").write_text(json.dumps(lat))
    out = tmp_path / "reports"
    write_table(exp, runs, out, "proxy", "", "synthetic", tmp_path / "latency.json")
    md = (out / "tables/kernel_size.md").read_text()
    assert "### Latency at paper scale" in md and "test cpu" in md
    assert "| 7x7 | 2.73 | 1300 [1275, 1325] | 1.29× | 1.30× [1.29, 1.31] (n=3) " \
           "| **agrees** |" in md
    assert "| 3x3 | 2.10 | 1000 [978, 1023] | 1.00× | 1.00× [1.00, 1.00] (n=3) " \
           "| **agrees (no effect)** |" in md
    metrics = json.loads((out / "metrics/kernel_size.json").read_text())["kernel_size"]
    assert metrics["k7"]["latency_ratio"] == pytest.approx(1.3, rel=1e-3)
    assert metrics["k3"]["latency_ratio"] == pytest.approx(1.0003, rel=1e-3)
    # DVC metrics stay few and numeric (dvc exp show): the latency verdict is in the table only
    assert "latency_verdict" not in metrics["k7"]


def test_measure_times_real_models_interleaved(tmp_path):
    """A real, small run: two paper-scale architectures at 64 px, 2 rounds of 1 call."""
    archs = architectures([EXPS["model_sizes"]])
    pick = {k: a for k, a in archs.items() if a.uses[0][1] in ("tiny", "s")}
    assert len(pick) == 2 and all(isinstance(a, Architecture) for a in pick.values())
    tiny, small = pick
    res = measure(pick, [(small, tiny)], rounds=2, warmup=1, threads=1, work_dir=tmp_path,
                  size=64, log=lambda _: None)
    assert res["rounds"] == 2 and set(res["archs"]) == set(pick)
    for a in res["archs"].values():
        assert len(a["all_ms"]) == 2 and all(len(t) == 2 for t in a["all_ms"])  # ABBA: 2 each
        assert a["backend"] in ("onnxruntime", "torch") and a["params"] > 1e6
    assert len(res["pairs"][0]["ratios"]) == 2 and all(q > 0 for q in res["pairs"][0]["ratios"])
