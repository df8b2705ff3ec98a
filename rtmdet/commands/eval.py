"""``rtmdet eval [CONFIG] --weights W [key=value ...] [--fast] [--mlflow] ...``: COCO box (and
mask) AP of a checkpoint, or for rotated configs the DOTA protocol (patch inference → merge →
VOC07 mAP → Task 1 files). Without CONFIG the config stored in the checkpoint is used.

Output files are named by test setting (``eval.json`` main, ``eval_fast.json`` with ``--fast``;
:func:`rtmdet.evaluation.evaluate.setting_suffix`); ``--suffix`` names them otherwise."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rtmdet.config import Config
from rtmdet.data.bad_input import summarize
from rtmdet.engine.tracking import log_eval
from rtmdet.evaluation.dota_patches import evaluate_dota
from rtmdet.evaluation.evaluate import evaluate

from .common import (add_device, add_dtype, add_overrides, check_precision, model_and_config,
                     optional_config, precision_model, resolve_device)
from .eval_tables import per_class_table, print_coco_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    optional_config(p)
    add_overrides(p)
    p.add_argument("--weights", required=True, help="our checkpoint (EMA weights are used)")
    p.add_argument("--out", default=None, help="output folder (default: beside the weights)")
    p.add_argument("--fast", action="store_true",
                   help="ablation test setting (score 0.05, top 100) instead of the main one; "
                        "files get the suffix _fast (eval_fast.json)")
    p.add_argument("--suffix", default=None,
                   help="file-name suffix of the outputs (default: '' main setting, '_fast' "
                        "with --fast), e.g. --suffix '' to write eval.json for --fast")
    add_device(p)
    add_dtype(p)
    p.add_argument("--backend", choices=["auto", "faster", "pycocotools"], default="auto",
                   help="COCO evaluator: faster-coco-eval, pycocotools, or auto (faster if "
                        "installed); the numbers are equal")
    p.add_argument("--max-images", type=int, default=None,
                   help="evaluate only the first N val images (quick checks)")
    p.add_argument("--mlflow", action="store_true", help="log the metrics as an MLflow run")
    add_dota_arguments(p)                    # rotated configs: DOTA protocol options


def run(args: argparse.Namespace) -> int:
    model, cfg = model_and_config(args.config, args.weights, args.overrides)
    args.device = resolve_device(args.device)
    out = Path(args.out) if args.out else Path(args.weights).parent
    check_precision(cfg, args.dtype, args.engine)
    if cfg.model.type == "rotated":          # DOTA protocol instead of COCO (SPEC §10)
        return run_dota(args, model, cfg, out)
    model, dtype = precision_model(model, cfg, args.dtype, args.device, args.calib_images,
                                   cfg.data.img_size, out / "onnx", args.engine)
    report = evaluate(model, cfg, out, args.fast, args.device, args.backend, args.max_images,
                      suffix=args.suffix, progress=True, dtype=dtype, engine=args.engine)
    print_coco_report(report)
    print(f"wrote {', '.join(Path(f).name for f in report['files'])} to {out} "
          f"({report['setting']} test setting)")
    print(f"bad input: {summarize(report.get('bad_input', {}))}")
    if args.mlflow:
        log_eval(cfg, report, out)
    return 0


def add_dota_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rtmdet eval`` that only rotated configs use."""
    g = p.add_argument_group("RTMDet-R / DOTA")
    g.add_argument("--dota-ann", default=None,
                   help="labelTxt folder of the unsplit val images (default: the split's record)")
    g.add_argument("--patch-index", default=None,
                   help="index.json of the val split (default: beside data.val_images)")
    g.add_argument("--ap-mode", choices=["11point", "area"], default="11point",
                   help="VOC07 11-point AP (the DOTA protocol) or area under the PR curve")


def run_dota(args: argparse.Namespace, model: torch.nn.Module, cfg: Config, out: Path) -> int:
    """``rtmdet eval`` for ``model.type: rotated``."""
    report = evaluate_dota(model, cfg, out, args.device, getattr(args, "patch_index", None),
                           getattr(args, "dota_ann", None), getattr(args, "ap_mode", "11point"),
                           max_patches=args.max_images)
    if report["metrics"]:
        aps = {r["name"]: round(r["ap"], 4) for r in report["per_class"] if r["num_gts"]}
        print(json.dumps({"mAP": round(report["metrics"]["mAP"], 4), **aps}))
        from rich.console import Console
        Console().print(per_class_table([r for r in report["per_class"] if r["num_gts"]],
                                        f"per-class AP (VOC07 {report.get('ap_mode')}, IoU 0.5): "
                                        f"mAP {report['metrics']['mAP']:.3f}", key="ap"))
    print(f"wrote {out / 'eval.json'} and {out / 'submission'}/Task1_*.txt "
          f"({report['num_detections']} detections on {report['num_images']} images)")
    if getattr(args, "mlflow", False) and report["metrics"]:
        log_eval(cfg, report, out)
    return 0
