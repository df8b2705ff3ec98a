"""``rtmdet convert mmdet SRC.pth DST.pt --model rtmdet-s``."""
from __future__ import annotations

import argparse

from rtmdet.models.weights import convert_mmdet_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source_format", choices=["mmdet"], help="format of SRC")
    p.add_argument("src", help="official checkpoint (.pth) or a state dict file")
    p.add_argument("dst", help="output checkpoint (ours)")
    p.add_argument("--model", required=True, help="preset or YAML the weights belong to")
    p.add_argument("--unsafe-load", action="store_true",
                   help="allow pickled non-tensor objects in SRC (only for files you trust)")


def run(args: argparse.Namespace) -> int:
    out = convert_mmdet_file(args.src, args.dst, args.model, args.unsafe_load)
    print(f"wrote {out}")
    return 0
