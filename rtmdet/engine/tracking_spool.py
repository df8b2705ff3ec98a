"""What a run folder knows about its MLflow run: the run record and the spool.

``mlflow_run.json`` names the run that the train, eval and bench jobs of one run folder log
into (they are separate processes, so the id travels through the folder). ``mlflow_spool.jsonl``
holds, in order, every logging call the store could not take (locked, busy, unreachable): the
next successful call, the end of the job, or the next job using the folder uploads it, with the
original timestamps and steps, so nothing is dropped. A run the store has not created yet has a
local key (``local:<uuid>``) until its ``create`` entry is uploaded.

    rtmdet mlflow flush RUN_DIR [...]    # upload what a folder still holds
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from rtmdet.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

RECORD = "mlflow_run.json"
SPOOL = "mlflow_spool.jsonl"
REJECTED = "mlflow_spool.rejected.jsonl"


def local_key() -> str:
    return f"local:{uuid.uuid4().hex}"


class RunRecord:
    """``RUN_DIR/mlflow_run.json``: the run key (a real run id once created), the experiment,
    the store URI and the aliases of local keys already uploaded."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / RECORD
        self.data: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                log.warning("%s unreadable (%s): treated as absent", self.path, e)

    @property
    def exists(self) -> bool:
        return bool(self.data.get("run"))

    @property
    def run(self) -> str | None:
        """The current run's key, resolved through the aliases when already uploaded."""
        key = self.data.get("run")
        return self.data.get("aliases", {}).get(key, key) if key else None

    def resolve(self, key: str) -> str | None:
        """Real run id of ``key`` (None while its ``create`` is still spooled)."""
        key = self.data.get("aliases", {}).get(key, key)
        return None if key.startswith("local:") else key

    def alias(self, local: str, run_id: str) -> None:
        self.data.setdefault("aliases", {})[local] = run_id
        if self.data.get("run") == local:
            self.data["run"] = run_id
        self.save()

    def set(self, **values: Any) -> None:
        self.data.update(values)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


class Spool:
    """Append-only JSON-lines file of pending logging calls, consumed from the front."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / SPOOL

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:       # a line cut by a kill mid-append: the only thing lost
                log.warning("%s:%d: unreadable spool line skipped", self.path, n)
        return out

    def __len__(self) -> int:
        return len(self.entries())

    def append(self, entry: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _keep(self, rest: list[dict[str, Any]]) -> None:
        if rest:
            atomic_write_text(self.path, "".join(json.dumps(e, sort_keys=True) + "\n"
                                                 for e in rest))
        elif self.path.exists():
            self.path.unlink()

    def reject(self, entry: dict[str, Any], error: BaseException) -> None:
        """A call the store refuses for good (not transient): kept aside, loudly."""
        log.warning("MLflow refused a spooled %s call (%s); kept in %s", entry.get("op"),
                    str(error).splitlines()[0][:200], self.dir / REJECTED)
        with open(self.dir / REJECTED, "a", encoding="utf-8") as f:
            f.write(json.dumps({**entry, "error": str(error)[:500]}, sort_keys=True) + "\n")

    def flush(self, upload: Callable[[list[dict[str, Any]]], None],
              permanent: Callable[[BaseException], bool]) -> int:
        """Upload the entries front to back, consecutive metrics of one run in one batch;
        the file is rewritten after every uploaded group, so a failure (raised) or a kill keeps
        exactly the rest. Returns how many entries were uploaded."""
        pending, done = self.entries(), 0
        while pending:
            group = [pending[0]]
            if group[0]["op"] == "metrics":
                while (len(group) < len(pending) and pending[len(group)]["op"] == "metrics"
                       and pending[len(group)]["run"] == group[0]["run"]
                       and sum(len(e["metrics"]) for e in group) < 900):
                    group.append(pending[len(group)])
            try:
                upload(group)
            except Exception as e:  # noqa: BLE001 - transient ones propagate, others set aside
                if not permanent(e):
                    raise
                for entry in group:
                    self.reject(entry, e)
            pending = pending[len(group):]
            done += len(group)
            self._keep(pending)
        return done
