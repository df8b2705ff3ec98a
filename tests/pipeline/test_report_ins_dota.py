"""rtmdet report on the RTMDet-Ins and DOTA tables: mask AP columns from segm_metrics, DOTA mAP
from the merged VOC07 evaluation, hand-computed means/deltas, and the per-class AP figure when a
DOTA run has no prediction to draw."""
from __future__ import annotations

import csv
import json

import pytest

from rtmdet.pipeline.report import write_table
from rtmdet.pipeline.report_rows import build_rows
from tests.helpers.report_runs import EXPS, fake_runs


def test_instance_seg_rows_carry_mask_ap(tmp_path):
    aps = {"tiny": [0.10, 0.20], "s": [0.30, 0.30], "m": [0.40], "l": [0.41], "x": [0.42]}
    runs = fake_runs(tmp_path, "instance_seg", aps, setting="main")
    for v, masks in {"tiny": [0.05, 0.15], "s": [0.25, 0.26], "m": [0.3], "l": [0.3],
                     "x": [0.3]}.items():
        for seed, m in enumerate(masks):
            ev = runs / v / f"seed{seed}" / "eval.json"
            r = json.loads(ev.read_text())
            ev.write_text(json.dumps({**r, "segm_metrics": {"AP": m}}))
    rows = {r["variant"]: r for r in build_rows(EXPS["instance_seg"], runs)}
    t = rows["tiny"]                          # paper: box 40.5, mask 35.4
    assert t["ours_AP_mean"] == pytest.approx(15.0) and t["ours_mask_AP_mean"] == pytest.approx(10.0)
    assert t["ours_mask_AP_std"] == pytest.approx(7.0710678, abs=1e-6)
    assert t["paper_mask_AP"] == 35.4 and t["delta_mask_AP"] == pytest.approx(10.0 - 35.4)
    # tiny - s per seed: 10-30, 20-30 -> -20, -10: mean -15, s = 7.07, t(1) -> ±63.5: covers 0
    assert rows["s"]["verdict"] == "reference" and t["verdict"] == "unresolved"
    assert (t["ours_delta_ci_low"], t["ours_delta_ci_high"]) == pytest.approx((-78.53, 48.53),
                                                                           abs=0.01)
    write_table(EXPS["instance_seg"], runs, tmp_path / "reports", "smoke", "", "synthetic")
    md = (tmp_path / "reports/tables/instance_seg.md").read_text()
    assert "| paper mask AP | ours mask AP | Δ mask |" in md
    assert ("| RTMDet-Ins-tiny | 40.5 | 15.0 [-48.5, 78.5] (n=2) | -25.5 | 35.4 | 10.0 ± 7.1 "
            "| -25.4 |") in md
    header = next(csv.reader((tmp_path / "reports/tables/instance_seg.csv").open()))
    assert header[-4:] == ["paper_mask_AP", "ours_mask_AP_mean", "ours_mask_AP_std", "delta_mask_AP"]


def test_dota_rows_read_map_and_draw_per_class_ap(tmp_path):
    exp = EXPS["dota"]
    runs = fake_runs(tmp_path, "dota", {v: [0.5] for v in exp.variants}, setting="dota")
    for v in exp.variants:                    # DOTA evals: metrics.mAP, no PR curve
        d = runs / v / "seed0"
        (d / "pr_curve.png").unlink()
        (d / "eval.json").write_text(json.dumps({
            "metrics": {"mAP": 0.25 if v == "l_ms_coco" else 0.2}, "setting": "dota",
            "per_class": [{"name": "plane", "ap": 0.2, "num_gts": 3}]}))
    rows = {r["variant"]: r for r in build_rows(exp, runs)}
    assert rows["s_ss"]["ours_AP_mean"] == pytest.approx(20.0) and "ours_mask_AP_mean" not in rows["s_ss"]
    c = rows["l_ms_coco"]                     # vs l_ms: paper 81.33 vs 80.54 ↑, ours 25 vs 20 ↑
    assert (c["reference"], c["ours_delta"], c["verdict"]) == \
        ("l_ms", pytest.approx(5.0), "unresolved (n=1)")
    assert c["paper_delta"] == pytest.approx(81.33 - 80.54)
    assert c["delta_AP"] == pytest.approx(25.0 - 81.33)
    write_table(exp, runs, tmp_path / "reports", "smoke", "", "synthetic_dota")
    md = (tmp_path / "reports/tables/dota.md").read_text()
    assert "DOTA VOC07 11-point mAP" in md and "1024×1024, 15 DOTA classes" in md
    assert (tmp_path / "reports/figures/dota_pr.png").read_bytes()[:4] == b"\x89PNG"
