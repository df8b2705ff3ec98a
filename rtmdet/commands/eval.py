"""``rtmdet eval CONFIG --weights W [--fast] [--mlflow] ...``: COCO box (and mask) AP of a checkpoint,
or for rotated configs the DOTA protocol (patch inference → merge → VOC07 mAP → Task 1 files)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rtmdet.config import Config, load_config
from rtmdet.data.bad_input import summarize
from rtmdet.engine.tracking import log_eval
from rtmdet.evaluation.dota_patches import evaluate_dota
from rtmdet.evaluation.evaluate import evaluate
from rtmdet.models.weights import load_weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="preset, YAML, or a run's config.yaml")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    p.add_argument("--weights", required=True, help="our checkpoint (EMA weights are used)")
    p.add_argument("--out", default=None, help="output folder (default: beside the weights)")
    p.add_argument("--fast", action="store_true",
                   help="ablation test setting (score 0.05, top 100) instead of the main one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=["auto", "faster", "pycocotools"], default="auto")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--mlflow", action="store_true", help="log the metrics as an MLflow run")
    add_dota_arguments(p)                    # rotated configs: DOTA protocol options


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    model, _ = load_weights(args.weights, cfg)
    out = Path(args.out) if args.out else Path(args.weights).parent
    if cfg.model.type == "rotated":          # DOTA protocol instead of COCO (SPEC §10)
        return run_dota(args, model, cfg, out)
    report = evaluate(model, cfg, out, args.fast, args.device, args.backend, args.max_images)
    m = report["metrics"]
    print(json.dumps({k: round(v, 4) for k, v in m.items()}))
    if "segm_metrics" in report:
        print("segm " + json.dumps({k: round(v, 4) for k, v in report["segm_metrics"].items()}))
    print(f"wrote {out / 'eval.json'} ({report['num_detections']} detections, "
          f"{report['setting']} test setting)")
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
    print(f"wrote {out / 'eval.json'} and {out / 'submission'}/Task1_*.txt "
          f"({report['num_detections']} detections on {report['num_images']} images)")
    if getattr(args, "mlflow", False) and report["metrics"]:
        log_eval(cfg, report, out)
    return 0
