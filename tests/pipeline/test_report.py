"""rtmdet report: tables from hand-made run folders (known APs), checked against hand-computed
means, stds, paired deltas and verdicts; setting mix-ups are refused; the index links all."""
from __future__ import annotations

import csv
import math

import pytest

from rtmdet.pipeline.report import write_index, write_table
from rtmdet.pipeline.report_rows import build_rows
from tests.helpers.report_runs import EXPS, fake_runs

def test_rows_mean_std_delta_and_verdict(tmp_path):
    exp = EXPS["kernel_size"]        # paper AP: k3 50.0, k5 50.9 (reference), k7 51.1
    runs = fake_runs(tmp_path, "kernel_size",
                     {"k3": [0.30, 0.32], "k5": [0.28, 0.30], "k7": [0.29, 0.29]})
    rows = {r["variant"]: r for r in build_rows(exp, runs)}
    k3, k5, k7 = rows["k3"], rows["k5"], rows["k7"]
    assert k3["ours_AP_mean"] == pytest.approx(31.0)
    assert k3["ours_AP_std"] == pytest.approx(math.sqrt(2) * 1.0)     # sample std of 30, 32
    assert k3["delta_AP"] == pytest.approx(31.0 - 50.0)
    assert k5["verdict"] == "reference"
    # k3 - k5 per seed: 30-28 = 2, 32-30 = 2 -> interval [2, 2], excludes 0 upwards; the paper's
    # Δ is 50.0 - 50.9 = -0.9 -> contradicts
    assert k3["paper_delta"] == pytest.approx(-0.9) and k3["ours_delta"] == pytest.approx(2.0)
    assert (k3["ours_delta_ci_low"], k3["ours_delta_ci_high"]) == pytest.approx((2.0, 2.0))
    assert k3["pairs"] == 2 and k3["verdict"] == "contradicts"
    # k7 - k5: 29-28 = 1, 29-30 = -1 -> mean 0, s = √2, t(0.975, 1) = 12.706 -> ±12.706;
    # paper +0.2 is a no-effect claim, but the interval is not within ±0.5 -> unresolved
    assert (k7["ours_delta_ci_low"], k7["ours_delta_ci_high"]) == pytest.approx((-12.706, 12.706),
                                                                             abs=1e-3)
    assert k7["verdict"] == "unresolved"
    assert k3["ours_params_M"] == pytest.approx(50.0) and k3["paper_params_M"] == 50.8
    assert k3["latency_backend"] == "onnxruntime/cpu, 128px, 1 thr"


def test_direction_agrees_and_compare_to(tmp_path):
    exp = EXPS["backbone_neck_ratio"]   # paper: s_63 43.7 < s_47 43.9; l_63 51.0 > l_47 50.9
    runs = fake_runs(tmp_path, "backbone_neck_ratio",
                     {"s_47": [0.40], "s_63": [0.39], "l_47": [0.45], "l_63": [0.47]})
    rows = {r["variant"]: r for r in build_rows(exp, runs)}
    # one seed: Δ is known, its interval is not -> honest 'unresolved (n=1)', never 'agrees'
    assert rows["s_63"]["reference"] == "s_47" and rows["s_63"]["verdict"] == "unresolved (n=1)"
    assert rows["l_63"]["reference"] == "l_47" and rows["l_63"]["ours_delta"] == pytest.approx(2)
    assert rows["l_47"]["reference"] == "s_47"


def test_not_found_and_not_run_are_shown_as_such(tmp_path):
    exp = EXPS["optimization"]
    runs = fake_runs(tmp_path, "optimization", {"adamw_cosine": [0.2], "sgd": [0.1]})
    summary = write_table(exp, runs, tmp_path / "reports", "smoke", "tiny runs", "synthetic")
    md = (tmp_path / "reports/tables/optimization.md").read_text()
    assert "| SGD + cosine | not found | 10.0 (n=1, no interval) | — |" in md
    assert "| AdamW + flat-cosine | 43.3 | not run |" in md
    # a variant this scale cannot run says why (rtmdet.pipeline.resolve.not_run_reason)
    assert ("| + RSB-pretrained (ImageNet) backbone | 44.5 | not run: runs at the paper scale "
            "only, not smoke |") in md
    pre = next(r for r in summary["rows"] if r["variant"] == "pretrained")
    assert pre["reference"] == "no_norm_bias_decay" and pre["seeds"] == 0
    assert "**scale**: smoke" in md and "synthetic COCO-format" in md
    sgd = next(r for r in summary["rows"] if r["variant"] == "sgd")
    assert sgd["verdict"] == "n/a" and sgd["delta_AP"] is None
    rows = list(csv.DictReader((tmp_path / "reports/tables/optimization.csv").open()))
    assert rows[0]["paper_AP"] == "not found"
    for name in ("optimization.png", "optimization_loss.png", "optimization_pr.png"):
        assert (tmp_path / "reports/figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_main_and_ablation_settings_are_never_mixed(tmp_path):
    runs = fake_runs(tmp_path, "model_sizes", {"s": [0.4]}, setting="ablation")
    with pytest.raises(ValueError, match="setting"):
        write_table(EXPS["model_sizes"], runs, tmp_path / "reports", "smoke", "", "synthetic")


def test_index_links_every_table_and_draws_speed_accuracy(tmp_path):
    out = tmp_path / "reports"
    s1 = write_table(EXPS["model_sizes"], fake_runs(tmp_path, "model_sizes",
                     {"tiny": [0.2], "s": [0.3]}, setting="main"), out, "smoke", "", "synthetic")
    s2 = write_table(EXPS["head_sharing"], fake_runs(tmp_path, "head_sharing", {"sepbn": [0.3]}),
                     out, "smoke", "", "synthetic")
    index = write_index([s1, s2], out).read_text()
    assert "tables/model_sizes.md" in index and "tables/head_sharing.md" in index
    assert "Smoke scale" in index and "figures/speed_accuracy.png" in index
    assert (out / "figures/speed_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_every_data_source_has_a_report_note():
    """`rtmdet report table --data` accepts what the pipeline passes: a data source without a
    note made the proxy scale's report rule fail after every training had finished."""
    from rtmdet.pipeline.report import DATA_NOTES
    from rtmdet.pipeline.resolve import DATA_SOURCES
    assert set(DATA_SOURCES) <= set(DATA_NOTES)
