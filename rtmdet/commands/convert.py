"""``rtmdet convert mmdet SRC.pth DST.pt --model rtmdet-s``: official weights (from the
mmdetection/mmrotate model zoo, see the README) into our checkpoint format, with the class names
of the official release (COCO, DOTA) stored in it for ``rtmdet predict``."""
from __future__ import annotations

import argparse

from rtmdet.config import load_config
from rtmdet.data.class_names import official_class_names
from rtmdet.models.weights import convert_mmdet_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source_format", choices=["mmdet"], help="format of SRC")
    p.add_argument("src", help="official checkpoint (.pth) or a state dict file")
    p.add_argument("dst", help="output checkpoint (ours)")
    p.add_argument("--model", required=True, help="preset or YAML the weights belong to")
    p.add_argument("--unsafe-load", action="store_true",
                   help="allow pickled non-tensor objects in SRC (only for files you trust)")
    p.add_argument("--classes", default=None,
                   help="comma-separated class names to store (default: COCO names for 80-class "
                        "models, DOTA names for 15-class RTMDet-R)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.model)
    classes = ([c.strip() for c in args.classes.split(",")] if args.classes
               else official_class_names(cfg.model.type, cfg.model.head.num_classes))
    out = convert_mmdet_file(args.src, args.dst, args.model, args.unsafe_load, classes)
    print(f"wrote {out}" + (f" ({len(classes)} class names)" if classes else ""))
    return 0
