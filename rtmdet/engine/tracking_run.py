"""One MLflow run bound to one run folder, robust to a busy store, kills and restarts.

Every logging call is first appended to the folder's spool, then the spool is uploaded front to
back (a write-ahead log): a locked or unreachable store costs one failed attempt, after which
uploads pause with exponential backoff while training goes on, and the spool is uploaded on the
next successful attempt, at the end of the job (with retries), or by the next job of the folder.
The run a train job creates is named in ``mlflow_run.json``, so eval and bench (separate
processes) log into the same run, and ``train --resume`` continues it under the same id; a new
training in a folder whose previous run is still RUNNING (killed with SIGKILL) closes that run
as KILLED first. SIGTERM/SIGINT end the run as KILLED before the process exits.
"""
from __future__ import annotations

import getpass
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from . import tracking_store as S
from .tracking_spool import RunRecord, Spool, local_key

log = logging.getLogger(__name__)

START_DEADLINE_S = float(os.environ.get("RTMDET_MLFLOW_START_S", 30))
END_DEADLINE_S = float(os.environ.get("RTMDET_MLFLOW_END_S", 120))
KILLED_DEADLINE_S = 10.0       # SLURM's KillWait is 30 s: close quickly after SIGTERM


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrackedRun:
    """``owner`` runs (created or resumed by this job) get a final status from :meth:`end`;
    a reused run (eval/bench adding to a train job's run) keeps the status it has."""

    def __init__(self, run_dir: str | Path, job: str, experiment: str, run_name: str,
                 tags: dict[str, str], params: dict[str, str], ablation: str | None = None,
                 resume: bool = False, reuse: bool = False) -> None:
        self.dir = Path(run_dir)
        self.job, self.experiment, self.run_name = job, experiment, run_name
        self.tags, self.params, self.ablation = tags, params, ablation
        self.resume, self.reuse = resume, reuse
        self.record, self.spool = RunRecord(self.dir), Spool(self.dir)
        self.client: Any = None
        self.key: str | None = None
        self.owner = False
        self.killed_by: int | None = None
        self._wait, self._next_try, self._warned = 2.0, 0.0, False
        self._logged_steps: dict[str, int] = {}
        self._old_handlers: dict[int, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "TrackedRun":
        self._connect(START_DEADLINE_S)
        self._flush(START_DEADLINE_S)                   # what an earlier job left
        previous = self.record.run if self.record.exists else None
        if previous and (self.reuse or self.resume):
            self.key, self.owner = previous, not self.reuse
            if self.resume:
                self._submit({"op": "status", "status": "RUNNING"})
                self._resumed_steps()
        else:
            if previous:                                 # a SIGKILLed job's run: close it
                self._submit({"op": "status", "status": "KILLED", "only_if": "RUNNING",
                              "run": previous})
            self._close_stale_by_tag()
            self.key, self.owner = local_key(), True
            self.record.set(run=self.key, experiment=self.experiment, job=self.job,
                            tracking_uri=S.tracking_uri(), previous=previous)
            tags = {**self.tags, "rtmdet.work_dir": str(self.dir.resolve()),
                    "rtmdet.local_key": self.key, "mlflow.user": _user(),
                    "mlflow.source.name": f"rtmdet {self.job}"}
            self._submit({"op": "create", "experiment": self.experiment, "run_name": self.run_name,
                          "ablation": self.ablation, "tags": tags, "start_time": _now_ms()})
            items = sorted(self.params.items())
            for i in range(0, len(items), 100):          # the store's limit per batch
                self._submit({"op": "params", "params": dict(items[i:i + 100])})
            if previous:                                 # one current run per folder
                self._submit({"op": "supersede", "run": previous, "by": self.key})
        if self.owner:
            self._install_signals()
        return self

    def end(self, status: str = "FINISHED") -> int:
        """Final status (owner runs), upload what is left; returns the entries still spooled."""
        self._restore_signals()
        if self.owner:
            self._submit({"op": "status", "status": status, "end_time": _now_ms()}, flush=False)
        deadline = KILLED_DEADLINE_S if status == "KILLED" else END_DEADLINE_S
        self._connect(deadline)
        self._flush(deadline)
        left = len(self.spool)
        if left:
            log.warning("MLflow store unavailable: %d logging calls kept in %s; the next rtmdet "
                        "job using %s uploads them (or: rtmdet mlflow flush %s)",
                        left, self.spool.path, self.dir, self.dir)
        return left

    @property
    def run_id(self) -> str | None:
        return self.record.resolve(self.key) if self.key else None

    # ------------------------------------------------------------------ logging calls
    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if step is not None and self._logged_steps:      # resumed: skip steps already there
            values = {k: v for k, v in values.items() if step > self._logged_steps.get(k, -1)}
        if values:
            self._submit({"op": "metrics", "metrics": {k: float(v) for k, v in values.items()},
                          "step": step or 0, "timestamp": _now_ms()})

    def set_tags(self, tags: dict[str, str]) -> None:
        self._submit({"op": "tags", "tags": {k: str(v) for k, v in tags.items()}})

    def log_artifact(self, path: str | Path) -> None:
        if Path(path).exists():
            self._submit({"op": "artifact", "path": str(Path(path).resolve())})

    # ------------------------------------------------------------------ spool and store
    def _submit(self, entry: dict[str, Any], flush: bool = True) -> None:
        entry.setdefault("run", self.key)
        self.spool.append(entry)
        if flush and time.monotonic() >= self._next_try:
            self._connect(0)
            self._flush(0)

    def _connect(self, deadline_s: float) -> bool:
        if self.client is None:
            try:
                self.client = S.retry(S.client, deadline_s=deadline_s)
            except Exception as e:  # noqa: BLE001
                if not S.is_transient(e):
                    raise
                self._backoff(e)
        return self.client is not None

    def _flush(self, deadline_s: float) -> None:
        if self.client is None or not self.spool.path.exists():
            return
        try:
            with S.quiet_store_errors():
                S.retry(self.spool.flush, self._upload, lambda e: not S.is_transient(e),
                        deadline_s=deadline_s)
            self._wait, self._next_try = 2.0, 0.0
        except Exception as e:  # noqa: BLE001 - flush only raises transient errors
            self._backoff(e)

    def _backoff(self, e: BaseException) -> None:
        self._next_try = time.monotonic() + self._wait
        if not self._warned:
            log.warning("MLflow store unavailable (%s): logging to %s until it is back",
                        str(e).splitlines()[0][:160], self.spool.path)
            self._warned = True
        self._wait = min(self._wait * 2, 60.0)

    def _upload(self, group: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric, Param, RunTag
        c, e = self.client, group[0]
        if e["op"] == "create":
            if not self.record.resolve(e["run"]):
                self.record.alias(e["run"], self._create(e))
            return
        run_id = self.record.resolve(e["run"])
        if run_id is None:
            raise ValueError(f"run {e['run']} was never created (its create call was refused)")
        if e["op"] == "metrics":
            c.log_batch(run_id, metrics=[Metric(k, v, g["timestamp"], g["step"])
                                         for g in group for k, v in g["metrics"].items()])
        elif e["op"] == "params":
            c.log_batch(run_id, params=[Param(k, v) for k, v in e["params"].items()])
        elif e["op"] == "tags":
            c.log_batch(run_id, tags=[RunTag(k, v) for k, v in e["tags"].items()])
        elif e["op"] == "artifact":
            if not Path(e["path"]).exists():
                raise ValueError(f"artifact {e['path']} no longer exists")
            c.log_artifact(run_id, e["path"])
        elif e["op"] == "supersede":
            # The previous run of this folder leaves the parent (the parent's children are the
            # current runs, one per variant and seed) and says what replaced it.
            c.set_tag(run_id, "rtmdet.superseded_by", self.record.resolve(e["by"]) or e["by"])
            if S.PARENT_TAG in c.get_run(run_id).data.tags:
                c.delete_tag(run_id, S.PARENT_TAG)
        elif e["op"] == "status":
            if e.get("only_if") and c.get_run(run_id).info.status != e["only_if"]:
                return
            if e["status"] == "RUNNING":
                c.update_run(run_id, status="RUNNING")
            else:
                c.set_terminated(run_id, e["status"], e.get("end_time") or _now_ms())

    def _create(self, e: dict[str, Any]) -> str:
        """The run, child of the ablation's parent run; found instead when an earlier attempt
        created it but was killed before recording its id."""
        c = self.client
        exp_id = S.get_or_create_experiment(c, e["experiment"])
        found = c.search_runs([exp_id], f"tags.`rtmdet.local_key` = '{e['run']}'", max_results=1)
        if found:
            return found[0].info.run_id
        tags = dict(e["tags"])
        if e.get("ablation"):
            tags[S.PARENT_TAG] = S.get_or_create_parent(c, exp_id, e["ablation"])
        return c.create_run(exp_id, start_time=e["start_time"], tags=tags,
                            run_name=e["run_name"]).info.run_id

    def _close_stale_by_tag(self) -> None:
        """RUNNING train runs of this folder that no record names (best effort, online only)."""
        if self.client is None or self.job != "train":
            return
        try:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                return
            path = str(self.dir.resolve()).replace("'", "\\'")
            for r in self.client.search_runs([exp.experiment_id],
                                             f"tags.`rtmdet.work_dir` = '{path}' and "
                                             "attributes.status = 'RUNNING'", max_results=100):
                self._submit({"op": "status", "status": "KILLED", "only_if": "RUNNING",
                              "run": r.info.run_id, "end_time": _now_ms()})
        except Exception as e:  # noqa: BLE001
            if not S.is_transient(e):
                raise

    def _resumed_steps(self) -> None:
        """Last step of each metric already in the resumed run: the steps between the last
        checkpoint and the kill are replayed by training and must not be logged twice."""
        run_id = self.run_id
        if self.client is None or run_id is None:
            return
        try:
            for key in self.client.get_run(run_id).data.metrics:
                hist = self.client.get_metric_history(run_id, key)
                self._logged_steps[key] = max((m.step for m in hist), default=-1)
        except Exception as e:  # noqa: BLE001
            if not S.is_transient(e):
                raise

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            old = signal.getsignal(sig)
            if old in (signal.SIG_DFL, signal.default_int_handler):   # SIG_IGN stays ignored
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)
        self._old_handlers = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Unwind (the caller's ``with`` block ends the run as KILLED), then exit as the signal
        would: KeyboardInterrupt for SIGINT, exit code 128 + signal for SIGTERM."""
        self.killed_by = signum
        self._restore_signals()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    @staticmethod
    def flush_folder(run_dir: str | Path) -> int:
        """Upload a folder's spool (``rtmdet mlflow flush``); returns the entries left."""
        run = TrackedRun(run_dir, "flush", "", "", {}, {})
        run._connect(END_DEADLINE_S)
        run._flush(END_DEADLINE_S)
        return len(run.spool)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
