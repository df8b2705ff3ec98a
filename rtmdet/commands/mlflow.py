"""``rtmdet mlflow setup|flush``: the MLflow store outside a training.

``setup EXPERIMENT_YAML ...`` does what the pipeline's ``mlflow_setup`` rule does: open (create or
migrate) the store under its lock and get-or-create each ablation's experiment (description from
the YAML, training-runs view tag) and parent run. ``flush RUN_DIR ...`` uploads what a run folder's
spool still holds (the store was down when its last job ended and no later job used the folder).
"""
from __future__ import annotations

import argparse
import logging

from rtmdet.engine.tracking_run import TrackedRun
from rtmdet.engine.tracking_store import setup_experiments, tracking_uri
from rtmdet.pipeline.spec import load_experiment


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="mlflow_command", required=True, metavar="WHAT")
    s = sub.add_parser("setup", help="store, experiments and parent runs of these ablations")
    s.add_argument("experiments", nargs="+", help="experiments/<name>.yaml")
    f = sub.add_parser("flush", help="upload the spooled logging calls of run folders")
    f.add_argument("run_dirs", nargs="+", help="runs/<ablation>/<variant>/seed<k>")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.mlflow_command == "setup":
        made = setup_experiments([load_experiment(p) for p in args.experiments])
        for name, ids in made.items():
            print(f"{name}: experiment {ids['experiment_id']}, parent run {ids['parent_run_id']}"
                  f" ({tracking_uri()})")
        return 0
    left = 0
    for run_dir in args.run_dirs:
        n = TrackedRun.flush_folder(run_dir)
        print(f"{run_dir}: {n} spooled calls left" if n else f"{run_dir}: nothing left to upload")
        left += n
    return 1 if left else 0
