"""MLflow through the real commands: 8 `rtmdet train --mlflow` processes on a fresh store, and
`rtmdet report table --mlflow` closing the ablation's parent run."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mlflow")

from rtmdet.config import load_config  # noqa: E402
from rtmdet.engine import tracking_store  # noqa: E402
from rtmdet.engine.tracking import RunLogger  # noqa: E402
from rtmdet.pipeline.spec import load_experiment  # noqa: E402
from tests.helpers.tracking_checks import REPO, finish, run_of, steps  # noqa: E402


@pytest.mark.slow
def test_eight_parallel_cli_trainings_on_fresh_store(store, tmp_path):
    """8 tiny `rtmdet train --mlflow` processes started together on a fresh store (before the
    store lock: 8 of 8 crashed in the schema migration): all FINISHED, every step logged."""
    from rtmdet.data.synthetic import write_synth_coco
    root = write_synth_coco(tmp_path / "synth", n_train=8, n_val=2, seed=0,
                            size_range=(64, 96), max_objects=4)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    over = [f"data.root={root}", "data.img_size=64", "data.num_workers=0",
            "model.head.num_classes=8", "model.backbone.widen_factor=0.125",
            "train.batch_size=2", "train.epochs=1", "train.max_iters_per_epoch=3",
            "train.warmup_iters=1", "train.flat_epochs=0", "train.stage2_epochs=0",
            "train.log_interval=1", "train.threads=1", "train.device=cpu", "tags.ablation=par"]
    procs = [subprocess.Popen([sys.executable, "-m", "rtmdet.cli", "train", "rtmdet-tiny", *over,
                               f"tags.variant=v{i}", "--work-dir", str(tmp_path / f"w{i}"),
                               "--mlflow"], env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for i in range(8)]
    finish(procs, timeout=900)
    c = tracking_store.client()
    for i in range(8):
        run = c.get_run(run_of(tmp_path / f"w{i}"))
        assert run.info.status == "FINISHED" and run.data.tags["variant"] == f"v{i}"
        assert steps(c, run.info.run_id) == [1, 2, 3]
    assert len(c.search_runs([c.get_experiment_by_name("par").experiment_id],
                             "tags.job = 'ablation'")) == 1


def test_report_finishes_the_parent_and_nests_orphans(store, tmp_path):
    """`rtmdet report table --mlflow`: the table and verdict counts on the parent, parent
    FINISHED; a run without a parent (an older version's) is nested, a superseded one is not."""
    from rtmdet.pipeline.report import link_mlflow
    exp = load_experiment(REPO / "experiments" / "kernel_size.yaml")
    runs = {}
    for v in ("k3", "k5", "old"):
        cfg = load_config("rtmdet-tiny", {"work_dir": str(tmp_path / v),
                                          "tags": {"ablation": "kernel_size", "variant": v}})
        with RunLogger(cfg, "train", run_dir=tmp_path / v) as run:
            run.metrics({"loss": 1.0}, step=1)
        runs[v] = run.run_id
    c = tracking_store.client()
    c.delete_tag(runs["k5"], tracking_store.PARENT_TAG)           # logged without a parent
    c.delete_tag(runs["old"], tracking_store.PARENT_TAG)
    c.set_tag(runs["old"], "rtmdet.superseded_by", runs["k3"])
    table = tmp_path / "kernel_size.md"
    table.write_text("| variant |\n")
    summary = {"evidence": {"verdicts": {"agrees": 1, "contradicts": 0, "unresolved": 2}}}
    parent = link_mlflow(exp, summary, table)
    got = c.get_run(parent)
    assert got.info.status == "FINISHED" and got.data.metrics["verdicts_unresolved"] == 2
    assert [a.path for a in c.list_artifacts(parent)] == ["kernel_size.md"]
    assert c.get_run(runs["k5"]).data.tags[tracking_store.PARENT_TAG] == parent
    assert c.get_run(runs["k3"]).data.tags[tracking_store.PARENT_TAG] == parent
    assert tracking_store.PARENT_TAG not in c.get_run(runs["old"]).data.tags
