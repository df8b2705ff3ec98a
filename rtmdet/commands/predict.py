"""``rtmdet predict --weights W.pt --source IMG_OR_DIR --out DIR``: run a checkpoint on real
image files, write each image with its boxes drawn plus one ``detections.json``."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from rtmdet.data.preprocess import preprocess
from rtmdet.models.weights import load_weights
from rtmdet.utils.io import atomic_write_bytes, atomic_write_json
from rtmdet.utils.errors import UserError
from rtmdet.utils.io import load_checkpoint

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


def _colour(label: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(label)  # stable colour per class
    return tuple(int(c) for c in rng.integers(64, 256, 3))


def draw_detections(img: np.ndarray, dets: list[dict[str, Any]]) -> np.ndarray:
    out = img.copy()
    for d in dets:
        x1, y1, x2, y2 = (int(round(v)) for v in d["box"])
        colour = _colour(d["label"])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        text = f"{d['class_name']} {d['score']:.2f}"
        cv2.putText(out, text, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    return out


@torch.no_grad()
def predict_image(model: torch.nn.Module, img: np.ndarray, size: int, score_thr: float,
                  iou_thr: float, max_per_img: int, class_names: list[str] | None
                  ) -> list[dict[str, Any]]:
    """Detections in original image pixels for one BGR uint8 image."""
    x, meta = preprocess(img, size, return_meta=True)
    p = next(model.parameters())
    res = model.predict(x.to(p.device, p.dtype), score_thr=score_thr, iou_thr=iou_thr,
                        max_per_img=max_per_img, img_shape=meta[0]["img_shape"])[0]
    h, w = img.shape[:2]
    boxes = res["boxes"].cpu() / meta[0]["scale"]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    out = []
    for box, score, label in zip(boxes.tolist(), res["scores"].tolist(), res["labels"].tolist()):
        name = class_names[label] if class_names and label < len(class_names) else str(label)
        out.append({"box": [round(v, 2) for v in box], "score": round(score, 5),
                    "label": int(label), "class_name": name})
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, help="our checkpoint (.pt)")
    p.add_argument("--source", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=None, help="input size (default: config)")
    p.add_argument("--score-thr", type=float, default=0.3)
    p.add_argument("--iou-thr", type=float, default=None)
    p.add_argument("--max-per-img", type=int, default=None)
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    images = list_images(args.source)
    targets = output_paths(args.source, images, out_dir)     # refusals before the model loads
    model, cfg = load_weights(args.weights)
    model.to(args.device).eval()
    class_names = load_checkpoint(args.weights).get("meta", {}).get("classes")
    results, skipped = [], 0
    for path, target in zip(images, targets):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            skipped += 1
            log.warning("skipping unreadable image %s", path)
            continue
        dets = predict_image(model, img, args.size or cfg.data.img_size, args.score_thr,
                             args.iou_thr or cfg.eval.iou_thr,
                             args.max_per_img or cfg.eval.max_per_img, class_names)
        ok, buf = cv2.imencode(target.suffix, draw_detections(img, dets))
        atomic_write_bytes(target, buf.tobytes())
        results.append({"file": str(path), "width": img.shape[1], "height": img.shape[0],
                        "detections": dets})
    atomic_write_json(out_dir / "detections.json",
                      {"weights": str(args.weights), "images": results, "skipped": skipped})
    print(f"{len(results)} image(s) -> {out_dir} ({skipped} unreadable skipped)")
    return 0 if results else 1
