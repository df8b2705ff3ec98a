"""The Snakemake/DVC pipeline: lint, dry-run of every ablation, and a reduced smoke DAG run end to
end (two kernel-size variants, a few iterations at 96 px) through the report, in a temp folder."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rtmdet.pipeline.resolve import not_run_reason
from rtmdet.pipeline.spec import list_experiments
from rtmdet.pipeline.report_timing import TIMING_TABLES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = [str(BIN / "snakemake")] if (BIN / "snakemake").exists() else [sys.executable, "-m", "snakemake"]
EXPERIMENTS = list_experiments(ROOT / "experiments")
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1",
       "OMP_NUM_THREADS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _smk(*args: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _workdir(tmp: Path, **changes) -> Path:
    """A scratch working directory with its own config/config.yaml (the repo's, changed)."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(changes)
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp


def test_lint_is_clean():
    r = _smk("--lint", "--profile", str(ROOT / "workflow/profiles/smoke"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Congratulations" in r.stdout + r.stderr


def test_dry_run_mlflow_setup_before_jobs_and_bench_into_seed_runs(tmp_path):
    """With MLflow on, one setup job creates the store, experiments and parent runs before any
    train job; each benchmark waits for its variant's trainings and logs into their runs."""
    r = _smk("-n", "-p", "--cores", "2", "-d", str(_workdir(tmp_path, ablations=["kernel_size"])),
             "table_kernel_size")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["mlflow_setup"] == 1 and counts["train"] == 3
    setup = out.split("rule mlflow_setup:")[1].split("\n\n")[0]
    assert "experiments/kernel_size.yaml" in setup and "runs/.mlflow_ready" in setup
    for v in ("k3", "k5", "k7"):
        assert (f"input: runs/kernel_size/{v}/seed0/resolved.yaml, data/prepared/coco.json, "
                "runs/.mlflow_ready") in out
        assert f"--mlflow --mlflow-run-dir runs/kernel_size/{v}/seed0 >" in out
        bench = out.split(f"output: runs/kernel_size/{v}/bench.json")[0].rsplit("rule bench:", 1)[1]
        assert f"runs/kernel_size/{v}/seed0/final.pt" in bench


def test_dry_run_lists_every_ablation_and_variant(tmp_path):
    r = _smk("-n", "--cores", "2", "-d", str(_workdir(tmp_path)), "ablation_tables")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    n_variants = 0
    for name, exp in EXPERIMENTS.items():
        assert f"reports/tables/{name}.md" in out
        for v in exp.variants:
            # e.g. the ImageNet-pretrained rows: paper scale only, and only with the file
            if not_run_reason(exp, v, "smoke", tmp_path) is not None:
                assert f"runs/{name}/{v}/" not in out
                continue
            n_variants += 1
            assert f"runs/{name}/{v}/seed0/final.pt" in out
            assert f"runs/{name}/{v}/seed1/final.pt" not in out    # smoke: one seed
    assert n_variants < sum(len(e.variants) for e in EXPERIMENTS.values())
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # RTMDet-R runs are scored by eval_dota (patches → merge → VOC07 mAP), the others by eval.
    assert counts["train"] == counts["eval"] + counts.get("eval_dota", 0) == counts["bench"] \
        == n_variants
    assert counts["report_table"] == len(EXPERIMENTS)
    # timing tables (cache loading time): synthetic JPEGs → rtmdet bench data → table, in the index
    for name in TIMING_TABLES:
        assert f"reports/tables/{name}.md" in out
    assert counts["synth_bench_images"] == counts["time_cache_loading"] == counts["report_timing"] == 1
    assert "data/bench_coco_480x640_n60" in out        # smoke scale: 60 images


def test_paper_profile_runs_three_seeds(tmp_path):
    r = _smk("reports/tables/kernel_size.md", "-n", "--cores", "2", "-d", str(_workdir(tmp_path)),
             "--config", "scale=paper", "ablations=[kernel_size]")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert all(f"runs/kernel_size/k3/seed{s}/final.pt" in out for s in (0, 1, 2))


def test_bad_config_is_rejected_by_the_schema(tmp_path):
    r = _smk("-n", "--cores", "1", "-d", str(_workdir(tmp_path, data_source="imagenet")),
             "ablation_tables")
    assert r.returncode != 0
    assert "data_source" in r.stdout + r.stderr


def test_dvc_lists_the_same_stages():
    r = subprocess.run([str(BIN / "dvc"), "stage", "list", "--name-only"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    stages = set(r.stdout.split())
    assert ({f"table_{n}" for n in [*EXPERIMENTS, *TIMING_TABLES]}
            | {"prepare_coco", "prepare_dota", "index"}) == stages


def test_cache_loading_time_table_through_snakemake(tmp_path):
    """The timing table's three rules on a tiny set (12 images, 8 samples, 128 px): the table
    and its JSON come out, and only `ablations` entries that exist are accepted."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    smoke = {**cfg["scales"]["smoke"], "data_bench": {"images": 12, "n": 8, "warmup": 6,
                                                      "repeats": 1}}
    work = _workdir(tmp_path, ablations=["cache_loading_time"], scales={**cfg["scales"],
                    "smoke": smoke}, data_bench={**cfg["data_bench"], "size": 128})
    r = _smk("--cores", "1", "--resources", "cpu_share=2", "-d", str(work), "ablation_tables",
             timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    summary = json.loads((work / "reports/tables/cache_loading_time.json").read_text())
    assert summary["kind"] == "timing" and summary["measurement"]["images"] == 12
    assert summary["measurement"]["n"] == 8 and summary["measurement"]["size"] == 128
    assert [r["paper_ms_per_100_images"] for r in summary["rows"]] == [87.1, 24.0, 19.3, 12.4]
    assert "tables/cache_loading_time.md" in (work / "reports/README.md").read_text()
    assert (work / "data/bench_coco_480x640_n12/annotations/instances_train.json").exists()
    bad = _smk("-n", "--cores", "1", "-d", str(_workdir(tmp_path / "bad", ablations=["nope"])),
               "ablation_tables")
    assert bad.returncode != 0 and "unknown ['nope']" in bad.stdout + bad.stderr


CI_SCALE = {
    "description": "CI scale: widths x0.125, 96 px, 2 epochs x 2 iterations",
    "num_seeds": 1, "width_mult": 0.125,
    "overrides": {"data.img_size": 96, "data.num_workers": 0, "train.epochs": 2,
                  "train.flat_epochs": 1, "train.stage2_epochs": 1,
                  "train.max_iters_per_epoch": 2, "train.batch_size": 2, "train.warmup_iters": 1,
                  "train.checkpoint_interval": 1, "train.log_interval": 1, "eval.batch_size": 8},
    "bench": {"size": 96, "runs": 3, "warmup": 1},
    "paper_latency": {"rounds": 0},      # the paper-scale latency job takes minutes: off
}


def _sandbox(tmp: Path) -> Path:
    """A copy of what the workflow reads (workflow/, experiments/, paper/, params.yaml,
    dvc.yaml, and rtmdet/ first on PYTHONPATH) and the committed reports/ of a fresh clone, so the test can
    edit an experiment or the code as a user would."""
    repo = tmp / "repo"
    for d in ("workflow", "experiments", "paper", "rtmdet", "reports"):
        shutil.copytree(ROOT / d, repo / d, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / f, repo / f)
    return repo


def test_reduced_smoke_dag_end_to_end(tmp_path):
    """On a fresh clone (committed reports/ present): two kernel-size variants through data →
    train → eval → bench → complexity → report → publish → index, the table's path and rows
    printed; a second invocation has nothing to do; the rerun policy, the same for Snakemake and
    DVC: a code edit reruns nothing, an edited variant retrains that variant only, a deleted
    reports/ file is published again without recomputing; then `snakemake --report`."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    work = _workdir(_sandbox(tmp_path), ablations=["kernel_size"],
                    variants={"kernel_size": ["k3", "k5"]},
                    mlflow=False, scale="ci",
                    scales={**cfg["scales"],
                            "ci": {**CI_SCALE, "resources": cfg["scales"]["smoke"]["resources"]}},
                    synthetic={**cfg["synthetic"], "train": 8, "val": 4, "max_size": 160,
                               "min_size": 96},
                    bench={"backend": "torch", "device": "cpu", "threads": 1})
    env = {**ENV, "PYTHONPATH": str(work)}
    # The sandbox's Snakefile (its ROOT is the sandbox), the repo's --rerun-triggers.
    smk = [*SNAKEMAKE, "-s", str(work / "workflow/Snakefile"), "--resources", "cpu_share=2",
           "--rerun-triggers", "mtime", "params", "input", "code", "-d", str(work), "--cores", "2"]

    def run(*args: str, timeout: int = 120) -> str:
        r = subprocess.run([*smk, *args], cwd=work, env=env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        return r.stdout + r.stderr

    def planned(*args: str) -> dict[str, int]:
        out = run("-n", *args)
        return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
                if len(line.split()) == 2 and line.split()[1].isdigit()}

    committed = (work / "reports/tables/kernel_size.md").read_text()
    out = run("ablation_tables", timeout=1200)
    assert (work / "runs/kernel_size/k3/seed0/final.pt").exists()      # it trained
    # onsuccess: where the table is and its headline rows
    assert "reports/tables/kernel_size.md:" in out and "reports/README.md" in out
    assert any(line.split()[:1] == ["k3"] and "not run" not in line for line in out.splitlines())
    assert any(line.split()[:2] == ["k7", "51.1"] and "not run" in line for line in out.splitlines())

    table = work / "reports/tables/kernel_size.md"
    md = table.read_text()
    assert md != committed and md == (work / "runs/reports/tables/kernel_size.md").read_text()
    assert "scale**: ci" in md and "synthetic" in md and "ablation (score 0.05, top 100)" in md
    rows = list(csv.DictReader((work / "reports/tables/kernel_size.csv").open()))
    assert [r["variant"] for r in rows] == ["k3", "k5", "k7"]
    assert rows[2]["ours_AP_mean"] == "" and rows[2]["paper_AP"] == "51.1"   # k7: paper row, not run
    assert "| 7x7 | 51.1 | not run |" in md
    k3 = rows[0]
    assert float(k3["paper_AP"]) == 50.0 and float(k3["paper_params_M"]) == 50.8
    assert abs(float(k3["ours_params_M"]) - 50.801436) < 1e-3      # paper scale, not the CI model
    assert k3["latency_backend"].startswith("torch/cpu, 96px")
    assert rows[1]["verdict"] == "reference"
    summary = json.loads((work / "reports/tables/kernel_size.json").read_text())
    evals = [json.loads((work / f"runs/kernel_size/{v}/seed0/eval.json").read_text())
             for v in ("k3", "k5")]
    assert [100 * e["metrics"]["AP"] for e in evals] == [r["ours_AP_mean"] for r in summary["rows"][:2]]
    assert all(e["setting"] == "ablation" for e in evals)
    resolved = yaml.safe_load((work / "runs/kernel_size/k3/seed0/config.yaml").read_text())
    assert resolved["model"]["backbone"]["kernel_size"] == 3 and resolved["data"]["img_size"] == 96
    for fig in ("kernel_size.png", "kernel_size_loss.png", "kernel_size_pr.png", "speed_accuracy.png"):
        assert (work / "reports/figures" / fig).read_bytes()[:4] == b"\x89PNG"
    index = (work / "reports/README.md").read_text()
    assert "tables/kernel_size.md" in index and "Smoke scale" not in index
    manifest = json.loads((work / "runs/reports/published/kernel_size.json").read_text())
    assert "reports/tables/kernel_size.md" in manifest["files"]

    assert "Nothing to be done" in run("ablation_tables")
    # DVC records what Snakemake built and agrees that it is current.
    dvc = [str(BIN / "dvc")]
    def dvc_run(*args: str) -> str:
        r = subprocess.run([*dvc, *args], cwd=work, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout + r.stderr
    dvc_run("init", "--no-scm", "-q")
    dvc_run("commit", "--force", "--quiet", "--with-deps", "table_kernel_size")
    assert "up to date" in dvc_run("status", "--with-deps", "table_kernel_size")

    # A code edit (rtmdet/ is not an input of either tool) reruns nothing.
    with (work / "rtmdet/models/cspnext.py").open("a") as f:
        f.write("\n# an edit that changes no result\n")
    assert "Nothing to be done" in run("-n", "ablation_tables")
    assert "up to date" in dvc_run("status", "--with-deps", "table_kernel_size")

    # An edited variant retrains that variant only (and re-renders its table).
    exp = work / "experiments/kernel_size.yaml"
    exp.write_text(exp.read_text().replace(
        "overrides: {model.backbone.kernel_size: 3, model.neck.kernel_size: 3}",
        "overrides: {model.backbone.kernel_size: 3, model.neck.kernel_size: 3, train.base_lr: 0.002}"))
    plan = planned("ablation_tables")
    assert {k: plan.get(k, 0) for k in ("resolve_config", "train", "eval", "bench", "report_table",
                                        "publish_table")} == {
        "resolve_config": 1, "train": 1, "eval": 1, "bench": 1, "report_table": 1,
        "publish_table": 1}
    assert "runs/kernel_size/k5/seed0/final.pt" not in run("-n", "-p", "ablation_tables").split(
        "rule train:")[-1].split("\n\n")[0]
    assert "experiments/kernel_size.yaml" in dvc_run("status", "table_kernel_size")
    exp.write_text(exp.read_text().replace(", train.base_lr: 0.002}", "}"))

    # A deleted published file (what `dvc repro` does to its outs first) is copied again.
    table.unlink()
    out = run("table_kernel_size")
    assert table.read_text() == md and "publish_table" in out and "rule train" not in out

    html = work / "report.html"
    run("--report", str(html), "ablation_tables")
    assert html.stat().st_size > 10_000
