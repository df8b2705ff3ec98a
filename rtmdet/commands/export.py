"""``rtmdet export [CONFIG] [--weights W] [key=value ...] [--with-postprocess] ...``: write the
ONNX graph, then check it against torch with onnxruntime unless ``--no-check``. Without CONFIG
the config stored in the checkpoint is used."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rtmdet.export.onnx import export_onnx
from rtmdet.export.parity import check_parity
from rtmdet.models.weights import load_model

from .common import add_overrides, checkpoint_config, optional_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    optional_config(p)
    add_overrides(p)
    p.add_argument("--weights", help="our checkpoint (rtmdet convert / train); random if omitted")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--size", type=int, default=None, help="input side (default bench.size)")
    p.add_argument("--batch", type=int, default=1, help="batch of the static graph")
    p.add_argument("--dynamic-batch", action="store_true", help="batch axis symbolic")
    p.add_argument("--with-postprocess", action="store_true",
                   help="decode + sigmoid + per-level top-k in-graph (NMS stays outside)")
    p.add_argument("--topk", type=int, default=None, help="per-level top-k (default eval.nms_pre)")
    p.add_argument("--out", help="output path (default runs/export/<name>[-post].onnx)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")


def run(args: argparse.Namespace) -> int:
    cfg = checkpoint_config(args.config, args.weights, args.overrides)
    model, cfg = load_model(cfg, args.weights)
    size = args.size or cfg.bench.size
    topk = args.topk or cfg.eval.nms_pre
    suffix = "-post" if args.with_postprocess else ""
    out = Path(args.out or f"runs/export/{cfg.name}{suffix}.onnx")
    meta = export_onnx(model, out, size, args.batch, args.opset, args.dynamic_batch,
                       args.with_postprocess, cfg.model.type, topk)
    print(f"wrote {out} (opset {args.opset}, {size}x{size}, batch {meta['batch']}); outputs: "
          + ", ".join(meta["outputs"]))
    if args.no_check:
        return 0
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, size, size)
    rep = check_parity(model, out, x, args.with_postprocess, cfg.model.type, cfg.eval.score_thr,
                       cfg.eval.iou_thr, cfg.eval.max_per_img, topk)
    worst = max(rep["outputs"].items(), key=lambda kv: kv[1]["max_abs_diff"] / kv[1]["tol"])
    dets = rep.get("detections")
    print(f"onnxruntime parity: {'OK' if rep['ok'] else 'FAILED'} (worst {worst[0]}: max abs diff "
          f"{worst[1]['max_abs_diff']:.3g} <= tol {worst[1]['tol']:.3g})"
          + (f"; detections torch {dets['torch']} vs ort {dets['onnxruntime']}, "
             f"same={dets['same']}" if dets else ""))
    return 0 if rep["ok"] else 1
