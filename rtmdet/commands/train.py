"""``rtmdet train CONFIG [key=value ...] [--work-dir D] [--resume | --auto-resume | --exist-ok]
[--mlflow]`` (also under ``torchrun -m rtmdet train``: one process per device, see
:mod:`rtmdet.engine.distributed`).

Without ``--work-dir`` each run gets a new folder (``runs/<name>``, ``<name>2``, …, from the
config's ``work_dir``; :mod:`rtmdet.utils.run_dir`); ``--resume`` without it continues the newest
of those holding a ``last.pt``. A named work dir that already holds a checkpoint is refused
unless the user says what to do with it: ``--resume`` continues it, ``--exist-ok`` starts over in
it (its checkpoints are replaced), and ``--auto-resume`` (the pipeline's train rule) resumes when
its ``last.pt`` belongs to the same config and starts over otherwise — so a killed job picks up
where it stopped. With ``train.val_interval`` > 0 the EMA weights are validated every N epochs
(COCO AP, mask AP for RTMDet-Ins, DOTA mAP for RTMDet-R) and the best kept in ``best.pt``. The
run ends with a summary table: final/best metric, files, MLflow run id.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from torch import nn

from rtmdet.config import Config, load_config
from rtmdet.engine.work_dir import resume_decision
from rtmdet.engine import distributed as D
from rtmdet.engine.trainer import Trainer
from rtmdet.utils.run_dir import latest_run_dir, new_run_dir

from .common import add_device, add_overrides
from .summary import print_train_summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset name or YAML")
    add_overrides(p)
    p.add_argument("--work-dir", default=None,
                   help="run folder (default: a new one from the config's work_dir: runs/<name>, "
                        "then runs/<name>2, ...)")
    p.add_argument("--resume", action="store_true",
                   help="continue from WORK_DIR/last.pt (without --work-dir: the newest run "
                        "folder of the config holding one)")
    p.add_argument("--auto-resume", action="store_true",
                   help="resume from WORK_DIR/last.pt if it exists (same config), else start fresh")
    p.add_argument("--exist-ok", action="store_true",
                   help="train into a work dir that already holds checkpoints (replacing them); "
                        "without --work-dir: the config's work_dir itself, not a new one")
    p.add_argument("--mlflow", action="store_true", help="record the run in MLflow")
    add_device(p, default=None, help_text="auto, cpu, cuda or cuda:N (default: train.device of "
               "the config, itself auto unless set)")


def work_dir_of(args: argparse.Namespace, cfg: Config) -> str:
    """The run folder: named (``--work-dir``) or a fresh/latest one derived from the config."""
    if args.work_dir:
        return args.work_dir
    if args.resume:
        return str(latest_run_dir(cfg.work_dir))
    if args.exist_ok or args.auto_resume or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return cfg.work_dir        # DDP: every rank must agree on the folder without talking
    return str(new_run_dir(cfg.work_dir))


def validator(cfg: Config):
    """The scoring function of :class:`rtmdet.engine.validation.PeriodicValidation`: the
    test protocol of the model type, in the config's main test setting, writing no files."""
    def validate(model: nn.Module) -> tuple[str, dict[str, float]]:
        device = str(next(model.parameters()).device)
        if cfg.model.type == "rotated":
            from rtmdet.evaluation.dota_patches import evaluate_dota
            return "mAP", evaluate_dota(model, cfg, None, device, figure=False)["metrics"]
        from rtmdet.evaluation.evaluate import evaluate
        report = evaluate(model, cfg, None, device=device, progress=False)
        if cfg.model.type == "ins":
            return "segm_AP", {**report["metrics"],
                               **{f"segm_{k}": v for k, v in report["segm_metrics"].items()}}
        return "AP", report["metrics"]
    return validate


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.overrides)
    extra = {"work_dir": work_dir_of(args, cfg)}
    if args.device:
        extra["train.device"] = args.device
    cfg = load_config(cfg, extra)
    resume = resume_decision(Path(cfg.work_dir), cfg, args.resume, args.auto_resume, args.exist_ok)
    trainer = Trainer(cfg, cfg.work_dir, resume=resume, mlflow=args.mlflow,
                      validate=validator(cfg) if cfg.train.val_interval else None)
    main_process = D.is_main()
    try:
        final = trainer.fit()
    finally:
        D.cleanup()
    if main_process:
        print_train_summary(trainer, Path(final))
    return 0
