"""DOTA-format dataset: one ``labelTxt/<name>.txt`` per ``images/<name>.png``.

Each label line is ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult``; the optional ``imagesource:``
and ``gsd:`` header lines are ignored. Objects stay quadrilaterals (``quads``) through
augmentation, because every geometric op maps them exactly; the rotated box (SPEC §10: minimum
area rectangle, long-edge-90 convention) is derived from them at the very end.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from rtmdet.geometry.rotated import poly_to_rbox

from .bad_input import BadInput
from .coco import read_image

log = logging.getLogger("rtmdet.data")

DOTA_CLASSES: tuple[str, ...] = (
    "plane", "baseball-diamond", "bridge", "ground-track-field", "small-vehicle",
    "large-vehicle", "ship", "tennis-court", "basketball-court", "storage-tank",
    "soccer-ball-field", "roundabout", "harbor", "swimming-pool", "helicopter")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def parse_dota_labels(path: str | Path, classes: tuple[str, ...] = DOTA_CLASSES,
                      bad: BadInput | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(quads (N, 4, 2) float32, labels (N,) int64, difficult (N,) bool)`` of one label file."""
    bad = bad or BadInput("skip")
    index = {c: i for i, c in enumerate(classes)}
    quads, labels, diff = [], [], []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        bad("label file not UTF-8 text", str(path), f"byte {e.start}")
        text = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith(("imagesource", "gsd")):
            continue
        where = f"{path}:{lineno}"
        if len(parts) not in (9, 10):
            bad("malformed DOTA line", where, f"expected 8 coordinates, class[, difficult]: {line!r}")
            continue
        try:
            coords = [float(v) for v in parts[:8]]
            difficult = int(parts[9]) if len(parts) == 10 else 0
        except ValueError:
            bad("malformed DOTA line", where, repr(line))
            continue
        if parts[8] not in index:
            bad("unknown class", where, parts[8])
            continue
        q = np.asarray(coords, np.float32).reshape(4, 2)
        if not all(map(math.isfinite, coords)) or abs(_area(q)) < 1.0:
            bad("degenerate polygon", where, repr(line))
            continue
        quads.append(q)
        labels.append(index[parts[8]])
        diff.append(difficult > 0)
    return (np.asarray(quads, np.float32).reshape(-1, 4, 2), np.asarray(labels, np.int64),
            np.asarray(diff, bool))


def _area(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def quads_to_boxes(quads: np.ndarray, h: int | None = None, w: int | None = None) -> np.ndarray:
    """Axis-aligned xyxy boxes enclosing each quad, optionally clipped to the image."""
    if len(quads) == 0:
        return np.zeros((0, 4), np.float32)
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1).astype(np.float32)
    if h is not None and w is not None:
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


def quads_to_rboxes(quads: np.ndarray) -> np.ndarray:
    """(N, 4, 2) quads -> (N, 5) float32 ``(cx, cy, w, h, θ)`` in le90 (w ≥ h, θ ∈ [−π/2, π/2)),
    by :func:`rtmdet.geometry.rotated.poly_to_rbox` (minimum-area rectangle)."""
    return poly_to_rbox(quads).numpy().astype(np.float32).reshape(-1, 5)


class DotaDataset:
    """Images of ``img_dir`` with labels from ``ann_dir`` (same stem, ``.txt``).

    ``ann_dir`` None means test images without labels. With ``train``, images without objects
    are left out when ``filter_empty``. ``load(i)`` returns ``img``, ``quads``, ``boxes``
    (their clipped hulls), ``labels``, ``difficult``, ``image_id`` (the stem), or None for a
    bad image under the skip policy.
    """

    def __init__(self, img_dir: str | Path, ann_dir: str | Path | None, train: bool = True,
                 filter_empty: bool = True, classes: tuple[str, ...] = DOTA_CLASSES,
                 bad: BadInput | None = None) -> None:
        self.img_dir = Path(img_dir)
        self.ann_dir = Path(ann_dir) if ann_dir is not None else None
        self.classes = classes
        self.bad = bad or BadInput("skip")
        if not self.img_dir.is_dir():
            raise FileNotFoundError(f"{self.img_dir}: image folder not found")
        if self.ann_dir is not None and not self.ann_dir.is_dir():
            raise FileNotFoundError(f"{self.ann_dir}: label folder not found")
        self.records: list[dict[str, Any]] = []
        for path in sorted(p for p in self.img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            quads = np.zeros((0, 4, 2), np.float32)
            labels, diff = np.zeros(0, np.int64), np.zeros(0, bool)
            if self.ann_dir is not None:
                txt = self.ann_dir / f"{path.stem}.txt"
                if not txt.is_file():
                    self.bad("missing label file", str(txt))
                    continue
                quads, labels, diff = parse_dota_labels(txt, classes, self.bad)
            if train and filter_empty and len(labels) == 0:
                continue
            self.records.append({"image_id": path.stem, "path": path, "quads": quads,
                                 "labels": labels, "difficult": diff})
        log.info("%s: %d images, %s", self.img_dir, len(self.records), self.bad.summary())

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, i: int) -> Path:
        return self.records[i]["path"]

    def load(self, i: int) -> dict[str, Any] | None:
        rec = self.records[i]
        img = read_image(rec["path"], self.bad)
        if img is None:
            return None
        h, w = img.shape[:2]
        return {"img": img, "quads": rec["quads"].copy(), "boxes": quads_to_boxes(rec["quads"], h, w),
                "labels": rec["labels"].copy(), "difficult": rec["difficult"].copy(),
                "image_id": rec["image_id"]}
