"""``rtmdet data``: synthetic datasets, DOTA patch splitting, augmentation preview.

    rtmdet data synth-coco [--root data/synth_coco] [--train 64] [--val 16]
    rtmdet data synth-dota [--root data/synth_dota] [--train 6] [--val 2]
    rtmdet data synth-proxy [--root data/proxy] [--train 2000] [--val 500]
    rtmdet data split-dota --images DIR [--labels DIR] --out DIR [--mode ss|ms]
    rtmdet data show CONFIG [key=value ...] [--n 16] [--out docs/augmentation.png]
"""
from __future__ import annotations

import argparse
import logging
import sys

from rtmdet.config import load_config
from rtmdet.data.bad_input import DataError
from rtmdet.data.dota_patches import MULTI_SCALE, SINGLE_SCALE, split_dota
from rtmdet.data.proxy import write_proxy
from rtmdet.data.show import write_grid
from rtmdet.data.synthetic import write_synth_coco, write_synth_dota

from .common import add_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    c = sub.add_parser("synth-coco", help="write a synthetic COCO-format dataset")
    c.add_argument("--root", default="data/synth_coco", help="output folder (default data/synth_coco)")
    c.add_argument("--train", type=int, default=64, help="training images (default 64)")
    c.add_argument("--val", type=int, default=16, help="validation images (default 16)")
    c.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same files)")
    c.add_argument("--min-size", type=int, default=320, help="smallest image side")
    c.add_argument("--max-size", type=int, default=640, help="largest image side")
    c.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="fixed image size instead of random sides (e.g. 480 640)")
    c.add_argument("--max-objects", type=int, default=20, help="most objects per image")
    c.add_argument("--workers", type=int, default=1, help="processes writing images")

    d = sub.add_parser("synth-dota", help="write a synthetic DOTA-format dataset")
    d.add_argument("--root", default="data/synth_dota", help="output folder (default data/synth_dota)")
    d.add_argument("--train", type=int, default=6, help="training scenes (default 6)")
    d.add_argument("--val", type=int, default=2, help="validation scenes (default 2)")
    d.add_argument("--seed", type=int, default=0, help="generator seed")
    d.add_argument("--min-size", type=int, default=1500, help="smallest scene side")
    d.add_argument("--max-size", type=int, default=3000, help="largest scene side")
    d.add_argument("--workers", type=int, default=2, help="processes writing scenes")

    x = sub.add_parser("synth-proxy", help="write the proxy task of the proxy scale (docs/proxy.md)")
    x.add_argument("--root", default="data/proxy", help="output folder (default data/proxy)")
    x.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    x.add_argument("--val", type=int, default=500, help="validation images (default 500)")
    x.add_argument("--seed", type=int, default=0, help="generator seed")
    x.add_argument("--workers", type=int, default=1, help="processes writing images")

    s = sub.add_parser("split-dota", help="cut DOTA images into patches (+ index.json)")
    s.add_argument("--images", required=True, help="folder of large images")
    s.add_argument("--labels", default=None, help="labelTxt folder (omit for test images)")
    s.add_argument("--out", required=True, help="output folder of the patches")
    s.add_argument("--mode", choices=["ss", "ms"], default="ss",
                   help="ss: rate 1, overlap 256; ms: rates 0.5/1/1.5, overlap 500")
    s.add_argument("--rates", type=float, nargs="+", default=None, help="override the mode's rates")
    s.add_argument("--gap", type=int, default=None, help="override the mode's overlap (px)")
    s.add_argument("--patch-size", type=int, default=1024, help="patch side (default 1024)")
    s.add_argument("--iof-thr", type=float, default=0.7,
                   help="keep an object in a patch when this share of it lies inside")
    s.add_argument("--img-rate-thr", type=float, default=0.6,
                   help="drop edge patches holding less than this share of image")
    s.add_argument("--pad-value", type=int, default=114, help="fill of padded patch borders")
    s.add_argument("--skip-empty", action="store_true", help="do not save patches without objects")
    s.add_argument("--workers", type=int, default=2, help="processes cutting images")
    s.add_argument("--on-bad", choices=["skip", "error"], default="skip",
                   help="an unreadable image or label file: skip it (counted) or stop")

    v = sub.add_parser("show", help="render augmented training samples into one image")
    v.add_argument("config", help="preset name or YAML config")
    add_overrides(v)
    v.add_argument("--n", type=int, default=16, help="samples drawn (default 16)")
    v.add_argument("--out", default="grid.png", help="output PNG (default grid.png)")
    v.add_argument("--tile", type=int, default=320, help="side of each tile in the grid")
    v.add_argument("--stage", type=int, choices=[1, 2], default=1,
                   help="pipeline stage: 1 Mosaic/MixUp, 2 the last epochs' lighter one")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    cmd = args.data_command
    if cmd == "synth-coco":
        root = write_synth_coco(args.root, args.train, args.val, args.seed,
                                (args.min_size, args.max_size), args.max_objects, args.workers,
                                shape=tuple(args.shape) if args.shape else None)
        print(f"wrote {root}/annotations/instances_{{train,val}}.json and {root}/images/")
    elif cmd == "synth-dota":
        root = write_synth_dota(args.root, args.train, args.val, args.seed,
                                (args.min_size, args.max_size), args.workers)
        print(f"wrote {root}/{{train,val}}/images and labelTxt")
    elif cmd == "synth-proxy":
        root = write_proxy(args.root, args.train, args.val, args.seed, args.workers)
        print(f"wrote {root}/annotations/instances_{{train,val}}.json and {root}/images/ "
              f"({args.train} train / {args.val} val images)")
    elif cmd == "split-dota":
        mode = SINGLE_SCALE if args.mode == "ss" else MULTI_SCALE
        index = split_dota(args.images, args.labels, args.out,
                           tuple(args.rates or mode["rates"]),
                           args.gap if args.gap is not None else mode["gap"], args.patch_size,
                           args.iof_thr, args.img_rate_thr, args.pad_value, not args.skip_empty,
                           args.workers, args.on_bad)
        skipped = ", ".join(f"{n} × {r}" for r, n in index["skipped"].items()) or "none"
        print(f"wrote {len(index['patches'])} patches to {args.out} (skipped: {skipped})")
    else:
        cfg = load_config(args.config, args.overrides)
        out = write_grid(cfg, args.out, args.n, args.tile, args.stage)
        print(f"wrote {out}")
    return 0
