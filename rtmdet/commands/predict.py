"""``rtmdet predict [CONFIG] --weights W.pt --source IMG_OR_DIR --out DIR [key=value ...]``: run a
checkpoint on real image files, write each image with its detections drawn (boxes; masks for
RTMDet-Ins; rotated boxes for RTMDet-R) plus one ``detections.json`` (records:
:mod:`rtmdet.commands.predict_draw`). Class names come from the checkpoint (``rtmdet convert``
stores COCO/DOTA names for official weights), else the official names for that class count."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
from tqdm import tqdm

from rtmdet.data.class_names import official_class_names
from rtmdet.utils.io import atomic_write_bytes, atomic_write_json
from rtmdet.utils.errors import UserError
from rtmdet.utils.io import load_checkpoint

from .common import (add_device, add_dtype, add_overrides, model_and_config, optional_config,
                     precision_model, resolve_device)
from .predict_draw import draw_detections, predict_image

__all__ = ["draw_detections", "list_images", "predict_image"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(source: str | Path) -> list[Path]:
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{src}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or directory")
    return [src]


def output_paths(source: str | Path, images: list[Path], out_dir: Path) -> list[Path]:
    """Where each drawn image goes: the source's relative path mirrored under ``out_dir``, the
    extension kept in the name (``x.bmp`` -> ``x.bmp.png``; JPEG and PNG stay as they are), so
    ``x.bmp`` and ``x.png`` or ``a/x.png`` and ``b/x.png`` never overwrite each other. An output
    folder inside the source tree is refused: predict would overwrite its inputs (and read its
    own drawings next time)."""
    src = Path(source).resolve()
    out = out_dir.resolve()
    if src.is_dir() and (out == src or src in out.parents):
        raise UserError(f"--out {out_dir} is inside --source {source}: the drawn images would "
                        "overwrite or mix with the inputs; choose an output folder outside it")
    paths = []
    for path in images:
        rel = path.resolve().relative_to(src) if src.is_dir() else Path(path.name)
        if rel.suffix.lower() not in (".jpg", ".png"):
            rel = rel.with_name(rel.name + ".png")
        if (out / rel).resolve() == path.resolve():
            raise UserError(f"--out {out_dir}: would overwrite the input {path}")
        paths.append(out_dir / rel)
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    optional_config(p)
    add_overrides(p)
    p.add_argument("--weights", required=True, help="our checkpoint (.pt)")
    p.add_argument("--source", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=None, help="input size (default: data.img_size)")
    p.add_argument("--score-thr", type=float, default=0.3,
                   help="drop detections scoring below this (default 0.3)")
    p.add_argument("--iou-thr", type=float, default=None, help="NMS IoU (default: eval.iou_thr)")
    p.add_argument("--max-per-img", type=int, default=None,
                   help="keep at most this many per image (default: eval.max_per_img)")
    add_device(p)
    add_dtype(p)


def class_names_of(weights: str, cfg) -> list[str] | None:
    """The checkpoint's class names, else the official ones for the task and class count."""
    names = load_checkpoint(weights).get("meta", {}).get("classes")
    return names or official_class_names(cfg.model.type, cfg.model.head.num_classes)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    images = list_images(args.source)
    targets = output_paths(args.source, images, out_dir)     # refusals before the model loads
    model, cfg = model_and_config(args.config, args.weights, args.overrides)
    device = resolve_device(args.device)
    model.to(device).eval()
    size = args.size or cfg.data.img_size
    model, dtype = precision_model(model, cfg, args.dtype, device, args.calib_images, size,
                                   out_dir / "onnx", args.engine)
    class_names = class_names_of(args.weights, cfg)
    results, skipped = [], 0
    for path, target in tqdm(list(zip(images, targets)), desc="predict", unit="img",
                             mininterval=1.0, dynamic_ncols=True):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            skipped += 1
            log.warning("skipping unreadable image %s", path)
            continue
        dets = predict_image(model, img, size, args.score_thr, args.iou_thr or cfg.eval.iou_thr,
                             args.max_per_img or cfg.eval.max_per_img, class_names,
                             task=cfg.model.type,
                             dtype=dtype if args.engine == "torch" else "fp32")
        ok, buf = cv2.imencode(target.suffix, draw_detections(img, dets))
        atomic_write_bytes(target, buf.tobytes())
        results.append({"file": str(path), "width": img.shape[1], "height": img.shape[0],
                        "detections": dets})
    atomic_write_json(out_dir / "detections.json",
                      {"weights": str(args.weights), "task": cfg.model.type, "dtype": dtype,
                       "engine": args.engine,
                       "classes": class_names, "images": results, "skipped": skipped})
    print(f"{len(results)} image(s) -> {out_dir} ({skipped} unreadable skipped)")
    return 0 if results else 1
