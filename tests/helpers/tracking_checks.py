"""Shared pieces of the MLflow tests: the fake jobs (tests/helpers/tracking_job.py) started as
separate processes, as the pipeline starts its jobs, and what their run folders and runs hold.
The fresh store per test is the ``store`` fixture of tests/engine/conftest.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rtmdet.engine.tracking_spool import RECORD

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "helpers" / "tracking_job.py"


def start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(JOB), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[str]:
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def wait_for(proc: subprocess.Popen, line: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = proc.stdout.readline()
        if got.strip() == line:
            return
        if not got and proc.poll() is not None:
            break
    raise AssertionError(f"job never printed {line!r} (rc {proc.poll()})")


def run_of(run_dir: Path) -> str:
    return json.loads((run_dir / RECORD).read_text())["run"]


def steps(client, run_id: str, key: str = "loss") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))
