"""``rtmdet train CONFIG [key=value ...] [--work-dir D] [--resume | --auto-resume | --exist-ok]
[--mlflow]`` (also under ``torchrun -m rtmdet train``: one process per device, see
:mod:`rtmdet.engine.distributed`).

A work dir that already holds a checkpoint is refused unless the user says what to do with it:
``--resume`` continues it, ``--exist-ok`` starts over in it (its checkpoints are replaced), and
``--auto-resume`` (the pipeline's train rule) resumes when its ``last.pt`` belongs to the same
config and starts over otherwise — so a killed job picks up where it stopped."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rtmdet.config import load_config
from rtmdet.engine.work_dir import resume_decision
from rtmdet.engine import distributed as D
from rtmdet.engine.trainer import Trainer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset name or YAML")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    p.add_argument("--work-dir", default=None, help="run folder (default: config work_dir)")
    p.add_argument("--resume", action="store_true", help="continue from WORK_DIR/last.pt")
    p.add_argument("--auto-resume", action="store_true",
                   help="resume from WORK_DIR/last.pt if it exists (same config), else start fresh")
    p.add_argument("--exist-ok", action="store_true",
                   help="train into a work dir that already holds checkpoints (replacing them)")
    p.add_argument("--mlflow", action="store_true", help="record the run in MLflow")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.overrides)
    if args.work_dir:
        cfg = load_config(cfg, {"work_dir": args.work_dir})
    resume = resume_decision(Path(cfg.work_dir), cfg, args.resume, args.auto_resume, args.exist_ok)
    trainer = Trainer(cfg, cfg.work_dir, resume=resume, mlflow=args.mlflow)
    main_process = D.is_main()
    try:
        final = trainer.fit()
    finally:
        D.cleanup()
    if main_process:
        print(f"wrote {final}")
        if trainer.mlflow_run_id:
            print(f"mlflow run {trainer.mlflow_run_id}")
    return 0
