"""MLflow records: one run per (variant, seed) run folder, child of the ablation's parent run.

The train job creates the run (params: the flattened config; metrics: the training curve) and
names it in the run folder (``mlflow_run.json``); the eval and bench jobs of the same folder are
other processes and reopen it by that id, so loss, AP and latency sit in one row of ``mlflow ui``'s
compare view. The store is ``sqlite:///mlflow.db`` in the working directory unless
``MLFLOW_TRACKING_URI`` says otherwise; it is opened under a file lock (:mod:`.tracking_store`),
and a busy store, kills and restarts are handled by :mod:`.tracking_run`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rtmdet.config import Config, config_hash
from rtmdet.models.precision import run_tag
from rtmdet.utils.envinfo import git_commit

from .tracking_run import TrackedRun
from .tracking_store import init_store

log = logging.getLogger(__name__)


def git_sha() -> str:
    return git_commit() or "unknown"


def _mlflow():
    """The ``mlflow`` module with the store opened under the store lock (report, tests)."""
    import mlflow    # lazy: the optional 'pipeline' extra
    mlflow.set_tracking_uri(init_store())
    return mlflow


def _tags(cfg: Config, job: str) -> dict[str, str]:
    tags = {"job": job, "config_hash": config_hash(cfg), "git_sha": git_sha(),
            "model": cfg.name, "seed": str(cfg.seed)}
    tags.update({k: str(v) for k, v in cfg.tags.items()})
    return tags


def _params(cfg: Config) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in cfg.flat().items() if k != "work_dir" and not k.startswith("tags.")}


class RunLogger:
    """Context manager around the MLflow run of one run folder; a no-op when ``enabled`` is
    False so the trainer has one code path. The train job owns the run (``resume``: the same run
    again); eval/bench jobs add to the run their folder names, or start their own when there is
    none. Leaving the block by SIGTERM/SIGINT (KeyboardInterrupt) ends the run as KILLED, by an
    error as FAILED."""

    def __init__(self, cfg: Config, job: str, enabled: bool = True,
                 run_dir: str | Path | None = None, resume: bool = False) -> None:
        self.cfg, self.job, self.enabled = cfg, job, enabled
        self.run_dir, self.resume = Path(run_dir or cfg.work_dir), resume
        self.run: TrackedRun | None = None

    @property
    def run_id(self) -> str | None:
        return self.run.run_id if self.run else None

    def __enter__(self) -> "RunLogger":
        if self.enabled:
            variant = self.cfg.tags.get("variant", self.cfg.name)
            self.run = TrackedRun(self.run_dir, self.job, self.cfg.tags.get("ablation", "rtmdet"),
                                  f"{variant}:seed{self.cfg.seed}", _tags(self.cfg, self.job),
                                  _params(self.cfg), self.cfg.tags.get("ablation"),
                                  resume=self.resume, reuse=self.job != "train").start()
        return self

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if self.run:
            self.run.log_metrics(values, step)

    def tags(self, values: dict[str, Any]) -> None:
        if self.run:
            self.run.set_tags(values)

    def artifact(self, path: str | Path) -> None:
        if self.run:
            self.run.log_artifact(path)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.run is None:
            return
        killed = (self.run.killed_by is not None
                  or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)))
        self.run.end("KILLED" if killed else "FAILED" if exc_type else "FINISHED")


def log_eval(cfg: Config, report: dict[str, Any], out_dir: str | Path) -> None:
    """AP (and the rest of the COCO/DOTA summary) into the run of ``out_dir``, the run folder.
    A reduced-precision eval (``--dtype bf16|int8``) logs under ``eval_<dtype>/`` and another
    engine under ``eval_<engine>[_<dtype>]/`` (``eval_openvino_bf16``), so that it sits beside
    the torch fp32 metrics instead of overwriting them."""
    dtype, engine = report.get("dtype", "fp32"), report.get("engine", "torch")
    pre = "eval" + run_tag(dtype, engine)
    with RunLogger(cfg, "eval", run_dir=out_dir) as run:
        run.metrics({f"{pre}/{k}": v for k, v in report["metrics"].items()})
        run.metrics({f"{pre}/segm_{k}": v for k, v in report.get("segm_metrics", {}).items()})
        run.tags({"eval.setting": report.get("setting", "main")})
        written = [Path(f) for f in report.get("files", []) if not str(f).endswith(".json")
                   or Path(f).name.startswith("eval")]          # files named by test setting
        for path in written or [Path(out_dir) / n for n in ("eval.json", "pr_curve.png",
                                                             "per_class_ap.csv")]:
            run.artifact(path)


def bench_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Latency (median, p90) and size of a ``rtmdet bench latency`` result (under
    ``bench_<dtype>/`` for a reduced precision that ran and ``bench_openvino[_<dtype>]/`` for
    the OpenVINO backend, beside the fp32 figures)."""
    lat = result.get("latency", {})
    dtype = result.get("dtype", "fp32")
    engine = "openvino" if result.get("backend") == "openvino" else "torch"
    pre = "bench" + run_tag(dtype, engine)
    out = {f"{pre}/latency_ms": lat.get("median_ms"), f"{pre}/latency_p90_ms": lat.get("p90_ms"),
           f"{pre}/params": result.get("params"), f"{pre}/flops": result.get("flops")}
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float))}


def log_bench(cfg: Config, result: dict[str, Any], path: str | Path | None,
              run_dirs: list[str | Path] | None = None) -> None:
    """Latency into the run of each folder in ``run_dirs`` (the pipeline: every seed's run of the
    variant, as weights do not change latency), else into a run of the config's work dir."""
    for run_dir in run_dirs or [cfg.work_dir]:
        with RunLogger(cfg, "bench", run_dir=run_dir) as run:
            run.metrics(bench_metrics(result))
            dtype = result.get("dtype", "fp32")
            key = "bench.backend" if dtype == "fp32" else f"bench_{dtype}.backend"
            run.tags({key: f"{result['backend']}/{result['device']}"
                      f"{' fp16' if result.get('fp16') else ''}, {result['size']}px, "
                      f"bs{result['batch']}, {result['threads']} threads"})
            if path:
                run.artifact(path)
