"""The MLflow tracking store: created once, experiments and parent runs got-or-created
race-free, transient errors retried with backoff.

Why this exists: on a *fresh* ``sqlite:///mlflow.db`` every process that opens the store sees
no tables and runs MLflow's alembic migrations, so two to four ``--mlflow`` processes started
together crash ("duplicate column", "_alembic_tmp_tags already exists") and leave a half-migrated
store. :func:`client` therefore opens the store of this process under a file lock next to the
database (``mlflow.db.lock``): whoever comes first creates/migrates the schema, the others wait a
moment and find it done. Creating an experiment or an ablation's parent run is a check-then-create
too, so it runs under the same lock and retries when another process won the race
(``mlflow.set_experiment`` can return without activating an experiment another process just
created; this module never uses the fluent API's global state).
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
# What the MLflow 3 UI reads to open an experiment in its classic training-runs view instead of
# the GenAI (traces) view; MLflow >= 3.x UIs that have a global "workflow type" switch also take
# ``?workflowType=machine_learning`` in the URL (see :func:`ui_url`).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
NOTE_TAG = "mlflow.note.content"         # the experiment's / run's description in the UI
PARENT_TAG = "mlflow.parentRunId"
LOCK_TIMEOUT_S = 600.0

T = TypeVar("T")
_opened: dict[str, Any] = {}
_locks: dict[str, Any] = {}


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``sqlite:////abs`` is absolute)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def lock_path(uri: str) -> Path:
    """``<db>.lock`` beside a sqlite store; for a server URI a per-host lock in the temp dir
    (it serialises this machine's processes; the pipeline's setup rule covers a cluster)."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".lock")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"rtmdet-mlflow-{digest}.lock"


@contextmanager
def store_lock(uri: str | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive across processes of this machine (filelock: flock on POSIX). One lock object
    per path in a process, so nested use (create an experiment, then its parent run) re-enters
    instead of deadlocking on a second file descriptor."""
    from filelock import FileLock
    path = lock_path(uri or tracking_uri())
    if str(path) not in _locks:
        path.parent.mkdir(parents=True, exist_ok=True)
        _locks[str(path)] = FileLock(str(path), timeout=timeout)
    with _locks[str(path)]:
        yield


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    return mlflow


def client(uri: str | None = None):
    """An ``MlflowClient`` whose store this process opened under the store lock, so the schema
    is created or migrated exactly once whatever the number of processes starting together."""
    uri = uri or tracking_uri()
    if uri in _opened:
        return _opened[uri]
    mlflow = _mlflow()
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(uri):          # MlflowClient() itself opens the store: create the tables
        try:
            c = mlflow.tracking.MlflowClient(uri)
            c.search_experiments(max_results=1)
        except Exception as e:  # noqa: BLE001 - one kind is fixable here: an old schema
            if db is None or "out-of-date database schema" not in str(e):
                raise
            log.warning("%s: upgrading the MLflow schema (mlflow db upgrade)", db)
            subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", uri],
                           check=True, capture_output=True)
            c = mlflow.tracking.MlflowClient(uri)
            c.search_experiments(max_results=1)
    _opened[uri] = c
    return c


def init_store(uri: str | None = None) -> str:
    """Create/migrate the store now (the pipeline's setup rule); returns its URI."""
    uri = uri or tracking_uri()
    client(uri)
    return uri


# ----------------------------------------------------------------------------- retries
_PERMANENT_CODES = {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                    "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST",
                    "PERMISSION_DENIED", "UNAUTHENTICATED", "ENDPOINT_NOT_FOUND"}


def is_transient(e: BaseException) -> bool:
    """A store that is locked, busy, unreachable or restarting (retry later), as opposed to a
    request the store refuses (retrying it cannot help)."""
    code = getattr(e, "error_code", None)
    if code in _PERMANENT_CODES:
        return False
    if isinstance(e, OSError):                       # sockets, requests' errors, files
        return True
    names = {t.__name__ for t in type(e).__mro__}
    if names & {"OperationalError", "DBAPIError", "TimeoutError", "Timeout"}:
        return True
    text = str(e).lower()
    return any(s in text for s in ("database is locked", "database is busy", "locked",
                                   "unable to open database", "disk i/o", "timed out",
                                   "temporarily unavailable", "connection"))


@contextmanager
def quiet_store_errors() -> Iterator[None]:
    """MLflow's SQL store logs every failed statement with a 60-line traceback; a locked store
    is expected here, retried, and reported once by the caller, so those records are dropped."""
    logger = logging.getLogger("mlflow.store.db.utils")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def retry(fn: Callable[..., T], *args: Any, deadline_s: float = 60.0, first_wait_s: float = 0.5,
          max_wait_s: float = 10.0, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried with exponential backoff while the error is transient
    and ``deadline_s`` has not passed; the last error is raised."""
    end, wait = time.monotonic() + deadline_s, first_wait_s
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - classified below
            if not is_transient(e) or time.monotonic() + wait > end:
                raise
            log.info("MLflow store busy (%s); retrying in %.1f s", str(e).splitlines()[0][:120],
                     wait)
            time.sleep(wait)
            wait = min(wait * 2, max_wait_s)


# ----------------------------------------------------------------------------- get-or-create
def get_or_create_experiment(c, name: str, description: str | None = None,
                             attempts: int = 5) -> str:
    """Experiment id of ``name``, created (with the training-runs view tag) if missing, restored
    if deleted. Under the store lock; a ``RESOURCE_ALREADY_EXISTS`` from a process on another
    machine is answered by looking the experiment up again."""
    for attempt in range(attempts):
        with store_lock(c.tracking_uri):
            exp = c.get_experiment_by_name(name)
            if exp is None:
                try:
                    exp_id = c.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                except Exception as e:  # noqa: BLE001
                    if "already exists" not in str(e).lower() or attempt == attempts - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))
                    continue
            else:
                exp_id = exp.experiment_id
                if exp.lifecycle_stage == "deleted":
                    c.restore_experiment(exp_id)
                if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    c.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            if description is not None:
                c.set_experiment_tag(exp_id, NOTE_TAG, description)
            return exp_id
    raise RuntimeError(f"MLflow experiment {name!r}: could not get or create it")


def get_or_create_parent(c, experiment_id: str, ablation: str, note: str | None = None) -> str:
    """The ablation's parent run (tag ``job=ablation``), created once: every (variant, seed) run
    is its child, so the compare view lines the variants up one row each."""
    with store_lock(c.tracking_uri):
        found = c.search_runs([experiment_id], "tags.job = 'ablation'", max_results=1,
                              order_by=["attributes.start_time ASC"])
        if found:
            return found[0].info.run_id
        tags = {"job": "ablation", "ablation": ablation, "mlflow.runName": ablation}
        if note:
            tags[NOTE_TAG] = note
        run = c.create_run(experiment_id, run_name=ablation, tags=tags)
        # Not RUNNING: nothing executes inside it; the report job marks it FINISHED.
        c.update_run(run.info.run_id, status="SCHEDULED")
        return run.info.run_id


def experiment_note(title: str, description: str | None, paper_ref: str | None = None) -> str:
    """The experiment description shown by the UI (markdown): the YAML's title and text."""
    head = f"**{title}**" + (f" ({paper_ref})" if paper_ref else "")
    return head + ("\n\n" + " ".join(description.split()) if description else "")


def setup_experiments(experiments: list[Any], uri: str | None = None) -> dict[str, dict[str, str]]:
    """Store, experiment (description + view tag) and parent run of every ablation, before any
    parallel job starts: what the pipeline's ``mlflow_setup`` rule runs."""
    c = client(uri)
    out = {}
    for exp in experiments:
        note = experiment_note(exp.title, exp.description, getattr(exp, "paper_ref", None))
        exp_id = retry(get_or_create_experiment, c, exp.name, note)
        parent = retry(get_or_create_parent, c, exp_id, exp.name, note)
        out[exp.name] = {"experiment_id": exp_id, "parent_run_id": parent}
    return out


def ui_url(base: str, experiment_id: str) -> str:
    """Link that opens an experiment in the training-runs view of the MLflow 3 UI."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
