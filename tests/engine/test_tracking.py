"""MLflow tracking under parallel jobs, kills, a busy store and resumes.

Fake jobs (tests/helpers/tracking_job.py: the tracking calls of train/eval/bench jobs, no
training) are started many at once against one *fresh* sqlite store, as the pipeline does;
before the store lock, 2-8 such processes crashed in MLflow's schema migration and left the
store unusable. The real commands: tests/engine/test_tracking_pipeline.py.
"""
from __future__ import annotations

import json
import signal
import sqlite3

import pytest

pytest.importorskip("mlflow")

from rtmdet.config import load_config  # noqa: E402
from rtmdet.engine import tracking_run, tracking_store  # noqa: E402
from rtmdet.engine.tracking import RunLogger, log_eval  # noqa: E402
from rtmdet.engine.tracking_spool import SPOOL  # noqa: E402
from rtmdet.pipeline.spec import load_experiment  # noqa: E402
from tests.helpers.tracking_checks import (REPO, finish, run_of, start, steps,  # noqa: E402
                                           wait_for)


def test_parallel_jobs_on_fresh_store(store, tmp_path):
    """4 train jobs at once on a fresh store (each get-or-creates the experiment and the
    parent), then 4 jobs at once that reopen those runs by id to log AP and latency (the eval
    and bench jobs of the pipeline, one process per run to keep the test short): one parent per
    ablation, one FINISHED child per variant holding params, curve, AP and latency."""
    cells = [(a, v) for a in ("kernel_size", "head_sharing") for v in ("x", "y")]
    dirs = {c: tmp_path / "runs" / c[0] / c[1] / "seed0" for c in cells}
    finish([start("train", str(dirs[c]), "--ablation", c[0], "--variant", c[1], "--steps", "6")
            for c in cells])
    finish([start("eval+bench", str(dirs[c]), "--ablation", c[0], "--variant", c[1],
                  "--ap", str(0.1 * (i + 1)), "--latency", str(2.0 + i))
            for i, c in enumerate(cells)])
    c = tracking_store.client()
    assert c.search_runs(["0"]) == []                            # nothing landed in Default
    for i, cell in enumerate(cells):
        exp = c.get_experiment_by_name(cell[0])
        assert exp.tags[tracking_store.EXPERIMENT_KIND_TAG] == tracking_store.EXPERIMENT_KIND
        parents = c.search_runs([exp.experiment_id], "tags.job = 'ablation'")
        assert len(parents) == 1
        run = c.get_run(run_of(dirs[cell]))
        assert run.info.status == "FINISHED"
        assert run.data.tags[tracking_store.PARENT_TAG] == parents[0].info.run_id
        assert run.data.tags["variant"] == cell[1] and run.info.run_name == f"{cell[1]}:seed0"
        assert steps(c, run.info.run_id) == [1, 2, 3, 4, 5, 6]
        assert run.data.metrics["eval/AP"] == pytest.approx(0.1 * (i + 1))
        assert run.data.metrics["bench/latency_ms"] == pytest.approx(2.0 + i)
        assert run.data.params["model.backbone.kernel_size"] == "5"     # the flattened config
        assert len(run.data.params) > 100
        assert not (dirs[cell] / SPOOL).exists()                # nothing left to upload
    for a in ("kernel_size", "head_sharing"):
        exp_id = c.get_experiment_by_name(a).experiment_id
        assert len(c.search_runs([exp_id], "tags.job = 'train'")) == 2


def test_setup_experiments_description_and_idempotent(store):
    exps = [load_experiment(REPO / "experiments" / f"{n}.yaml") for n in ("kernel_size",
                                                                           "head_sharing")]
    first = tracking_store.setup_experiments(exps)
    assert tracking_store.setup_experiments(exps) == first       # the same ids, nothing new
    c = tracking_store.client()
    exp = c.get_experiment(first["kernel_size"]["experiment_id"])
    note = exp.tags[tracking_store.NOTE_TAG]
    assert note.startswith("**Kernel size of the CSPNeXt blocks** (Fig. 5a)")
    assert "Depthwise kernel of every CSPNeXt block" in note
    assert exp.tags[tracking_store.EXPERIMENT_KIND_TAG] == "custom_model_development"
    parent = c.get_run(first["kernel_size"]["parent_run_id"])
    assert parent.info.status == "SCHEDULED" and parent.data.tags["job"] == "ablation"


@pytest.mark.parametrize("sig,rc", [(signal.SIGTERM, 128 + signal.SIGTERM),
                                    (signal.SIGINT, -signal.SIGINT)])
def test_signal_ends_run_as_killed(store, tmp_path, sig, rc):
    """SIGTERM: exit code 143 after the run is closed; SIGINT: KeyboardInterrupt, which Python
    turns into death by SIGINT once the run is closed."""
    proc = start("train", str(tmp_path / "run"), "--ablation", "a", "--variant", "v",
                 "--steps", "1000", "--sleep", "0.2")
    wait_for(proc, "step 3")
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode == rc
    run = tracking_store.client().get_run(run_of(tmp_path / "run"))
    assert run.info.status == "KILLED" and run.info.end_time
    assert steps(tracking_store.client(), run.info.run_id)[:3] == [1, 2, 3]


def test_sigkill_then_resume_keeps_the_run_id(store, tmp_path):
    """kill -9 leaves the run RUNNING; --resume continues it under the same id, replayed steps
    are not logged twice; a fresh (non-resume) training afterwards closes nothing FINISHED and
    replaces the run under the parent."""
    run_dir = tmp_path / "run"
    proc = start("train", str(run_dir), "--ablation", "a", "--variant", "v", "--steps", "1000",
                 "--sleep", "0.2")
    wait_for(proc, "step 5")
    proc.kill()
    proc.wait(timeout=60)
    c = tracking_store.client()
    first = run_of(run_dir)
    assert c.get_run(first).info.status == "RUNNING"
    finish([start("train", str(run_dir), "--ablation", "a", "--variant", "v", "--steps", "8",
                  "--first-step", "4", "--resume")])
    assert run_of(run_dir) == first
    assert c.get_run(first).info.status == "FINISHED"
    assert steps(c, first) == [1, 2, 3, 4, 5, 6, 7, 8]

    proc = start("train", str(run_dir), "--ablation", "a", "--variant", "v", "--steps", "1000",
                 "--sleep", "0.2")
    wait_for(proc, "step 2")
    proc.kill()
    proc.wait(timeout=60)
    stale = run_of(run_dir)
    finish([start("train", str(run_dir), "--ablation", "a", "--variant", "v", "--steps", "3")])
    new = run_of(run_dir)
    assert len({first, stale, new}) == 3
    assert c.get_run(stale).info.status == "KILLED"              # closed, not left RUNNING
    assert c.get_run(first).info.status == "FINISHED"
    parent = c.get_run(new).data.tags[tracking_store.PARENT_TAG]
    children = c.search_runs([c.get_run(new).info.experiment_id],
                             f"tags.`{tracking_store.PARENT_TAG}` = '{parent}'")
    assert [r.info.run_id for r in children] == [new]           # one current run per folder
    assert c.get_run(stale).data.tags["rtmdet.superseded_by"] == new


def _locked(monkeypatch, state: dict) -> None:
    """The store answers 'database is locked' while ``state['locked']``, like sqlite when
    another process holds a write lock for longer than MLflow's busy timeout (20 s)."""
    from mlflow.tracking import MlflowClient
    real = MlflowClient.log_batch

    def log_batch(self, *a, **k):
        if state["locked"]:
            state["refused"] += 1
            raise sqlite3.OperationalError("database is locked")
        return real(self, *a, **k)
    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)


def _locked_run(tmp_path, monkeypatch):
    """A run folder, its config and the switch of a store that refuses uploads while locked."""
    run_dir = tmp_path / "run"
    cfg = load_config("rtmdet-tiny", {"work_dir": str(run_dir),
                                      "tags": {"ablation": "a", "variant": "v"}})
    state = {"locked": False, "refused": 0}
    _locked(monkeypatch, state)
    return run_dir, cfg, state


def test_locked_store_spools_then_uploads(store, tmp_path, monkeypatch):
    run_dir, cfg, state = _locked_run(tmp_path, monkeypatch)
    with RunLogger(cfg, "train", run_dir=run_dir) as run:
        run.metrics({"loss": 1.0}, step=1)
        state["locked"] = True
        for step in range(2, 6):
            run.metrics({"loss": 1.0 / step}, step=step)
        assert state["refused"] == 1                     # one attempt, then backoff, no stall
        assert len((run_dir / SPOOL).read_text().splitlines()) == 4
        state["locked"] = False
        run.run._next_try = 0.0                          # the backoff has expired
        run.metrics({"loss": 1 / 6}, step=6)             # the next call uploads everything
        assert not (run_dir / SPOOL).exists()
        for step in range(7, 9):
            run.metrics({"loss": 1.0 / step}, step=step)
    c = tracking_store.client()
    assert steps(c, run.run_id) == list(range(1, 9))
    assert c.get_run(run.run_id).info.status == "FINISHED"


def test_store_locked_past_the_end_is_uploaded_by_the_next_job(store, tmp_path, monkeypatch):
    """The train job ends while the store is still locked: the rest (final status included)
    stays in the run folder, and the eval job of that folder uploads it first."""
    monkeypatch.setattr(tracking_run, "END_DEADLINE_S", 0.2)
    run_dir, cfg, state = _locked_run(tmp_path, monkeypatch)
    with RunLogger(cfg, "train", run_dir=run_dir) as run:
        run.metrics({"loss": 1.0}, step=1)
        state["locked"] = True
        for step in range(2, 5):
            run.metrics({"loss": 1.0 / step}, step=step)
    c = tracking_store.client()
    assert c.get_run(run.run_id).info.status == "RUNNING"
    kept = [json.loads(x) for x in (run_dir / SPOOL).read_text().splitlines()]
    assert [e["op"] for e in kept] == ["metrics"] * 3 + ["status"]
    state["locked"] = False
    log_eval(cfg, {"metrics": {"AP": 0.25}, "setting": "main"}, run_dir)
    got = c.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics["eval/AP"] == 0.25
    assert steps(c, run.run_id) == [1, 2, 3, 4]
    assert not (run_dir / SPOOL).exists()


def test_store_down_at_start_creates_the_run_later(store, tmp_path, monkeypatch):
    """No store at all while the job runs: the run's creation itself is spooled (a local key
    in the record) and done, with the original start time, when the store is back."""
    monkeypatch.setattr(tracking_run, "START_DEADLINE_S", 0.0)
    monkeypatch.setattr(tracking_run, "END_DEADLINE_S", 0.0)
    real = tracking_store.client

    def down(uri=None):
        raise sqlite3.OperationalError("unable to open database file")
    monkeypatch.setattr(tracking_store, "client", down)
    run_dir = tmp_path / "run"
    cfg = load_config("rtmdet-tiny", {"work_dir": str(run_dir),
                                      "tags": {"ablation": "a", "variant": "v"}})
    with RunLogger(cfg, "train", run_dir=run_dir) as run:
        for step in (1, 2, 3):
            run.metrics({"loss": 1.0 / step}, step=step)
    assert run.run_id is None and run_of(run_dir).startswith("local:")
    monkeypatch.setattr(tracking_store, "client", real)
    assert tracking_run.TrackedRun.flush_folder(run_dir) == 0
    run_id = run_of(run_dir)
    got = tracking_store.client().get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.tags["variant"] == "v"
    assert steps(tracking_store.client(), run_id) == [1, 2, 3]
