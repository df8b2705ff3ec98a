"""MLflow records: one run per train / eval / bench job, linked by tags.

Each Snakemake job is its own process, so runs are linked by tags (``ablation``, ``variant``,
``seed``, ``job``, ``config_hash``, ``git_sha``) rather than nested in-process; the flattened
config is logged as params so ``mlflow ui`` can compare variants column by column. The store is
``sqlite:///mlflow.db`` in the working directory unless ``MLFLOW_TRACKING_URI`` says otherwise;
:func:`init_store` runs the schema migration once, before parallel jobs race to do it.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rtmdet.config import Config, config_hash
from rtmdet.utils.envinfo import git_commit

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"


def git_sha() -> str:
    return git_commit() or "unknown"


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow    # lazy: the optional 'pipeline' extra
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI))
    return mlflow


def init_store() -> str:
    """Create/migrate the tracking store once (the sqlite schema migration is not safe to run
    from many processes at the same moment)."""
    mlflow = _mlflow()
    client = mlflow.tracking.MlflowClient()
    client.search_experiments(max_results=1)
    return mlflow.get_tracking_uri()


def _tags(cfg: Config, job: str) -> dict[str, str]:
    tags = {"job": job, "config_hash": config_hash(cfg), "git_sha": git_sha(),
            "model": cfg.name, "seed": str(cfg.seed)}
    tags.update({k: str(v) for k, v in cfg.tags.items()})
    return tags


def _params(cfg: Config) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in cfg.flat().items() if k != "work_dir" and not k.startswith("tags.")}


class RunLogger:
    """Context manager wrapping one MLflow run; a no-op when ``enabled`` is False so the
    trainer has one code path."""

    def __init__(self, cfg: Config, job: str, enabled: bool = True) -> None:
        self.cfg, self.job, self.enabled = cfg, job, enabled
        self.run_id: str | None = None

    def __enter__(self) -> "RunLogger":
        if self.enabled:
            mlflow = _mlflow()
            mlflow.set_experiment(self.cfg.tags.get("ablation", "rtmdet"))
            variant = self.cfg.tags.get("variant", self.cfg.name)
            run = mlflow.start_run(run_name=f"{self.job}:{variant}:seed{self.cfg.seed}",
                                   tags=_tags(self.cfg, self.job))
            self.run_id = run.info.run_id
            mlflow.log_params(_params(self.cfg))
        return self

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if self.enabled:
            self._safely(_mlflow().log_metrics, {k: float(v) for k, v in values.items()},
                         step=step)

    def artifact(self, path: str | Path) -> None:
        if self.enabled and Path(path).exists():
            self._safely(_mlflow().log_artifact, str(path))

    def _safely(self, fn, *args, **kwargs) -> None:
        """A tracking-store hiccup (locked or replaced sqlite file) must not kill a training
        run that may have hours left: warn once, keep training, stop logging to this run."""
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any store error
            log.warning("MLflow logging disabled for this run after error: %s",
                        str(e).splitlines()[0])
            self.enabled = False

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.run_id is not None:
            try:
                _mlflow().end_run(status="FAILED" if exc_type else "FINISHED")
            except Exception as e:  # noqa: BLE001
                log.warning("could not close MLflow run %s: %s", self.run_id, e)


def log_eval(cfg: Config, report: dict[str, Any], out_dir: str | Path) -> None:
    with RunLogger(cfg, "eval") as run:
        run.metrics({f"val/{k}": v for k, v in report["metrics"].items()})
        for name in ("eval.json", "pr_curve.png", "per_class_ap.csv"):
            run.artifact(Path(out_dir) / name)


def log_bench(cfg: Config, result: dict[str, Any], path: str | Path) -> None:
    with RunLogger(cfg, "bench") as run:
        run.metrics({k: v for k, v in result.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)})
        run.artifact(path)
