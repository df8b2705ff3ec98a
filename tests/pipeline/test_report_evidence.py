"""rtmdet report end to end on fabricated runs (3 paired seeds): the table's interval, paired Δ
and verdict cells computed by hand, the equivalence margin read from the experiment file, the
seed-collision failure of the CLI, the flat DVC metrics (and DVC reading them), the index's
verdict counts, and the figures (files exist and are not blank)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rtmdet.pipeline.dvc import PLOT_AP, PLOT_DELTA, dvc_doc
from rtmdet.pipeline.spec import ExperimentError, load_experiment
from rtmdet.pipeline.report import write_index, write_table
from rtmdet.pipeline.report_forest import read_ap_curves
from tests.helpers.report_runs import EXPS, ROOT, fake_runs

# k3 - k5 per seed: -1.1, -1.3, -0.8 (mean -1.0667, s = 0.2517, half = 4.3027·s/√3 = 0.6252)
# k7 - k5 per seed: +0.1, -0.1, +0.2 (mean +0.0667, s = 0.1528, half = 0.3795)
KERNEL_APS = {"k3": [0.301, 0.292, 0.310], "k5": [0.312, 0.305, 0.318],
              "k7": [0.313, 0.304, 0.320]}


def _flatten(d: dict, prefix: str = "") -> dict:
    """How DVC names nested metrics: dotted paths."""
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _blank(png: Path) -> bool:
    import matplotlib.image
    img = matplotlib.image.imread(str(png))
    return float(np.std(img)) == 0.0


@pytest.fixture
def kernel_table(tmp_path):
    runs = fake_runs(tmp_path, "kernel_size", KERNEL_APS)
    out = tmp_path / "reports"
    return write_table(EXPS["kernel_size"], runs, out, "proxy", "fabricated", "synthetic"), out


def test_table_cells_by_hand(kernel_table):
    summary, out = kernel_table
    md = (out / "tables/kernel_size.md").read_text()
    # k3: mean 30.1, s = 0.9, half = 4.3027·0.9/√3 = 2.2357
    assert "| 3x3 | 50.0 | 30.1 [27.9, 32.3] (n=3) | -19.9 | -0.9 | -1.1 [-1.7, -0.4] (n=3) " \
           "| **agrees** |" in md
    assert "| 7x7 | 51.1 | 31.2 [29.2, 33.2] (n=3) | -19.9 | +0.2 | +0.1 [-0.3, +0.4] (n=3) " \
           "| **agrees (no effect)** |" in md
    assert "±0.5 AP" in md and "paired t (95 %)" in md
    assert "agrees 2 (of which no effect 1) · contradicts 0 · unresolved 0" in md
    rows = {r["variant"]: r for r in summary["rows"]}
    assert rows["k3"]["ours_delta"] == pytest.approx(-1.06667, abs=1e-4)
    assert (rows["k3"]["ours_delta_ci_low"], rows["k3"]["ours_delta_ci_high"]) == \
        pytest.approx((-1.06667 - 0.62517, -1.06667 + 0.62517), abs=1e-4)
    assert rows["k7"]["paper_delta"] == 0.2                           # rounded, not 0.2000000003
    assert summary["evidence"]["spearman_AP"] == {"rho": pytest.approx(1.0), "n": 3}


def test_equivalence_margin_comes_from_the_experiment_file(tmp_path):
    text = (ROOT / "experiments/kernel_size.yaml").read_text()
    (tmp_path / "kernel_size.yaml").write_text(text + "equivalence_margin: 0.25\n")
    exp = load_experiment(tmp_path / "kernel_size.yaml")
    assert exp.equivalence_margin == 0.25 and EXPS["kernel_size"].equivalence_margin == 0.5
    runs = fake_runs(tmp_path, "kernel_size", KERNEL_APS)
    s = write_table(exp, runs, tmp_path / "reports", "proxy", "", "synthetic")
    k7 = next(r for r in s["rows"] if r["variant"] == "k7")
    assert k7["verdict"] == "unresolved"              # [-0.31, 0.45] leaves ±0.25, covers 0
    assert "±0.25 AP" in (tmp_path / "reports/tables/kernel_size.md").read_text()
    for bad in ("-1", "big", "true"):
        (tmp_path / "kernel_size.yaml").write_text(text + f"equivalence_margin: {bad}\n")
        with pytest.raises(ExperimentError, match="equivalence_margin: must be a positive"):
            load_experiment(tmp_path / "kernel_size.yaml")


def test_identical_seeds_fail_the_report_step(tmp_path, capsys):
    from rtmdet.cli import main
    runs = fake_runs(tmp_path, "kernel_size",
                     {"k3": [0.30, 0.31, 0.32], "k5": [0.31, 0.31, 0.33], "k7": [0.3, 0.2, 0.1]})
    rc = main(["report", "table", str(ROOT / "experiments/kernel_size.yaml"), "--runs", str(runs),
               "--out", str(tmp_path / "reports"), "--scale", "proxy", "--data", "synthetic"])
    err = capsys.readouterr().err
    assert rc == 3 and "seeds 0 and 1 produced bit-identical metrics" in err and "/k5" in err
    assert not (tmp_path / "reports/tables/kernel_size.md").exists()     # nothing half-written


def test_flat_dvc_metrics(kernel_table):
    _, out = kernel_table
    flat = _flatten(json.loads((out / "metrics/kernel_size.json").read_text()))
    assert all(isinstance(v, float) for v in flat.values())             # numbers only
    assert flat["kernel_size.k5.AP"] == pytest.approx(31.16667, abs=1e-4)
    assert flat["kernel_size.k3.AP"] == pytest.approx(31.16667 - 1.06667, abs=1e-4)
    assert flat["kernel_size.k3.verdict"] == 1.0
    assert "kernel_size.k5.verdict" not in flat                         # the reference
    # few columns per variant for `dvc exp show`; Δ, intervals and n stay in the table CSV/JSON
    assert {k.split(".")[2] for k in flat if k.count(".") == 2} <= {"AP", "verdict",
                                                                     "latency_ratio"}
    assert (flat["kernel_size.agrees"], flat["kernel_size.contradicts"],
            flat["kernel_size.unresolved"]) == (2.0, 0.0, 0.0)


def test_dvc_yaml_declares_metrics_and_plots():
    doc = dvc_doc(EXPS)
    st = doc["stages"]["table_kernel_size"]
    assert st["metrics"] == [{"reports/metrics/kernel_size.json": {"cache": False}}]
    plot = st["plots"][0]["reports/tables/kernel_size.csv"]
    assert (plot["x"], plot["template"]) == ("variant", PLOT_AP)
    assert {"kernel_size_delta"} <= {next(iter(p)) for p in doc["plots"]}
    for template in (PLOT_AP, PLOT_DELTA):
        spec = json.loads((ROOT / template).read_text())
        assert "<DVC_METRIC_DATA>" in json.dumps(spec) and '"nominal"' in json.dumps(spec)
    assert doc["stages"]["index"]["metrics"] == [{"reports/metrics/overall.json": {"cache": False}}]


@pytest.mark.slow
def test_dvc_reads_the_metrics_and_renders_the_plots(kernel_table, tmp_path):
    """`dvc metrics show` sees the flat numbers; `dvc plots show` writes an HTML with the data."""
    dvc = Path(sys.executable).with_name("dvc")
    if not dvc.exists() or shutil.which("git") is None:
        pytest.skip("dvc or git not installed")
    _, out = kernel_table
    repo = tmp_path / "repo"
    shutil.copytree(out, repo / "reports")
    shutil.copytree(ROOT / "workflow/dvc_plots", repo / "workflow/dvc_plots")
    full = dvc_doc(EXPS)
    st = full["stages"]["table_kernel_size"]
    stage = {"cmd": "true", "metrics": st["metrics"], "plots": st["plots"]}
    doc = {"stages": {"table_kernel_size": stage},
           "plots": [p for p in full["plots"] if "kernel_size_delta" in p]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {"DVC_NO_ANALYTICS": "1", "PATH": f"{dvc.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def sh(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True,
                              text=True, timeout=300).stdout
    sh("git", "init", "-q")
    sh(str(dvc), "init", "-q")
    shown = json.loads(sh(str(dvc), "metrics", "show", "--json"))
    data = next(iter(shown.values()))["data"]["reports/metrics/kernel_size.json"]["data"]
    assert data["kernel_size"]["k5"]["AP"] == pytest.approx(31.16667, abs=1e-4)
    sh(str(dvc), "plots", "show", "-o", "plots_html")
    html = (repo / "plots_html/index.html").read_text()
    assert '"variant": "k3"' in html and "ours_delta_ci_low" in html and "nominal" in html


def test_figures_exist_and_are_drawn(kernel_table):
    _, out = kernel_table
    for name in ("kernel_size_forest.png", "kernel_size_ap_curve.png", "kernel_size.png"):
        png = out / "figures" / name
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000, name
        assert not _blank(png), name


def test_ap_curve_reads_periodic_validation(tmp_path):
    runs = fake_runs(tmp_path, "kernel_size", KERNEL_APS)
    seed0 = runs / "k5/seed0"
    (seed0 / "metrics.csv").write_text("global_iter,loss,val_AP\n1,2.0,\n50,1.5,0.10\n"
                                       "100,1.2,0.25\n150,1.1,\n")
    curves = read_ap_curves(runs / "k5")
    # periodic points (fraction -> ×100), then the final eval.json at the last logged iteration
    assert curves[0] == [(50, 10.0), (100, 25.0), (150, pytest.approx(31.2))]
    assert curves[1] == [(2, pytest.approx(30.5))]      # no val column: the final point only


def test_index_counts_verdicts_and_draws_speed_accuracy(kernel_table, tmp_path):
    s1, out = kernel_table
    runs = fake_runs(tmp_path / "b", "stage_depth", {"d3993": [0.30, 0.29, 0.31],
                                                     "d3663": [0.31, 0.30, 0.32],
                                                     "d3663_ca": [0.33, 0.305, 0.34]})
    s2 = write_table(EXPS["stage_depth"], runs, out, "proxy", "", "synthetic")
    # d3993 - d3663: -1, -1, -1 -> [-1, -1] vs paper +0.5: contradicts; d3663_ca: +2, +0.5, +2
    # -> mean 1.5, s = 0.866, half = 2.151: covers 0 -> unresolved
    assert [r["verdict"] for r in s2["rows"]] == ["contradicts", "reference", "unresolved"]
    sizes = write_table(EXPS["model_sizes"], fake_runs(tmp_path / "c", "model_sizes",
                        {"tiny": [0.20, 0.21], "s": [0.30, 0.33]}, setting="main"),
                        out, "proxy", "", "synthetic")
    index = write_index([s1, s2, sizes], out).read_text()
    assert "## Verdicts over all tables" in index
    assert "**agrees 2** (of which no effect 1) · **contradicts 1** · **unresolved 2**" in index
    assert "| 2 (no effect 1) / 0 / 0 | +1.00 (n=3) |" in index
    overall = json.loads((out / "metrics/overall.json").read_text())["overall"]
    assert (overall["agrees"], overall["contradicts"], overall["unresolved"]) == (2, 1, 2)
    png = out / "figures/speed_accuracy.png"
    assert png.stat().st_size > 10_000 and not _blank(png)


def test_ap_zero_everywhere_is_no_evidence(tmp_path):
    """Untrained smoke models detect nothing: AP 0 for every seed of both rows gives a Δ interval
    [0, 0], which must not read as 'agrees (no effect)' (k7's paper Δ is +0.2)."""
    runs = fake_runs(tmp_path, "kernel_size", {"k3": [0.0, 0.0], "k5": [0.0, 0.0],
                                               "k7": [0.0, 0.0]})
    for v in ("k3", "k5", "k7"):         # seeds trained differently: losses differ
        (runs / v / "seed1/metrics.csv").write_text("global_iter,loss\n1,2.1\n2,1.6\n")
    s = write_table(EXPS["kernel_size"], runs, tmp_path / "reports", "smoke", "", "synthetic")
    assert [r["verdict"] for r in s["rows"]] == ["unresolved (AP 0)", "reference",
                                                 "unresolved (AP 0)"]
    assert s["evidence"]["verdicts"]["unresolved"] == 2
