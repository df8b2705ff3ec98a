"""Render augmented training samples with their targets into one image, to check by eye.

Geometry bugs in augmentation (a box that drifts off its object after a flip, a mask left
behind by a crop) are invisible in loss curves but obvious in a picture.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from rtmdet.config import Config
from rtmdet.utils.io import atomic_write_bytes

from .loader import build_train_dataset


def _colour(label: int) -> tuple[int, int, int]:
    hue = (label * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(c) for c in bgr)


def draw_item(item: dict, classes: list[str] | tuple[str, ...]) -> np.ndarray:
    """One training item (tensors) -> BGR image with masks, boxes, quads and class names."""
    img = item["img"].permute(1, 2, 0).numpy().copy()
    labels = item["labels"].tolist()
    if "masks" in item:
        for m, lab in zip(item["masks"].numpy(), labels):
            img[m] = (0.5 * img[m] + 0.5 * np.array(_colour(lab))).astype(np.uint8)
    for i, (box, lab) in enumerate(zip(item["boxes"].tolist(), labels)):
        c = _colour(lab)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        if "quads" in item:
            cv2.polylines(img, [item["quads"][i].numpy().round().astype(np.int32)], True, c, 2)
        else:
            cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
        cv2.putText(img, classes[lab] if lab < len(classes) else str(lab), (x1, max(y1 - 3, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA)
    return img


def render_grid(cfg: Config, n: int = 16, tile: int = 320, stage: int = 1,
                warmup: int = 8) -> np.ndarray:
    """``n`` consecutive augmented samples (after ``warmup`` to fill the caches) in a grid."""
    ds = build_train_dataset(cfg, stage=stage)
    classes = getattr(ds.source, "classes", [])
    for i in range(warmup):
        ds[i % len(ds)]
    tiles = []
    for i in range(n):
        img = draw_item(ds[(warmup + i) % len(ds)], classes)
        tiles.append(cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * tile, cols * tile, 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = t
        cv2.rectangle(grid, (c * tile, r * tile), ((c + 1) * tile - 1, (r + 1) * tile - 1), (255, 255, 255), 2)
    return grid


def write_grid(cfg: Config, out: str | Path, n: int = 16, tile: int = 320, stage: int = 1) -> Path:
    grid = render_grid(cfg, n, tile, stage)
    ok, buf = cv2.imencode(Path(out).suffix or ".png", grid)
    if not ok:
        raise ValueError(f"{out}: cannot encode image with this extension")
    return atomic_write_bytes(out, buf.tobytes())
