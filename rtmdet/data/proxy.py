"""The *proxy* data set: a small generated COCO-format task on which the paper's ablations can
show an effect in CPU minutes.

The general synthetic set (:mod:`rtmdet.data.synthetic`) checks formats and loaders; its 64
images and easy shapes say nothing about *why* RTMDet is built the way it is. This one is
designed, before any table was looked at, around the mechanisms the paper ablates
(docs/proxy.md has the full rationale and the known biases):

* **Scales across the three pyramid levels.** "Part" objects span ~8-40 px (strides 8/16) and
  "plates" 40-100 px (strides 16/32) in ~128 px images.
* **Classes that need context.** The two plate classes share one texture and outline and differ
  only in the marks at their four corners (rings vs crosses), ~0.3 side lengths away from the
  centre where the assigner puts most positives: the centre's local pattern cannot tell them apart,
  a wider receptive field (larger depthwise kernels, more blocks) can.
* **Crowds.** About half the images hold a cluster of overlapping parts; which prior point is
  assigned to which neighbour is decided by the assigner's cost terms (centre prior, IoU, class).
* **Enough images** (2000 train) that augmentation strength and caches change what is seen,
  while one training stays at a few minutes on one core.

Every image draws from its own ``(seed, split, index)`` stream: any subset is reproducible and
the files are byte-identical across machines for a given OpenCV/libjpeg.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .synthetic import (_background, _texture, _unit_shape, paint_object, visible_annotations,
                        write_coco_dataset)

# Contiguous ids 1..6; names say what a reader should look for in docs/proxy.png.
PROXY_CATEGORIES: list[tuple[int, str]] = [
    (1, "disk"), (2, "box"), (3, "triangle"), (4, "star"), (5, "plate-rings"), (6, "plate-crosses"),
]
# Part classes: shape index of synthetic._unit_shape, base colour (BGR), texture. Colours are
# jittered by ±30 per channel: colour is a cue, shape and texture confirm it.
_PARTS = [(0, (60, 60, 210), "solid"), (1, (200, 130, 40), "hstripes"),
          (2, (60, 190, 60), "checker"), (3, (40, 190, 220), "dots")]
SIZES = (112, 160)            # image sides (px), drawn per image
PART_SIZE = (8.0, 40.0)       # object diameter, log-uniform
PLATE_SIZE = (40.0, 100.0)    # plate side, uniform


def _draw_part(img, owner, rng, k: int, cx: float, cy: float, d: float) -> tuple[int, int]:
    cls = int(rng.integers(0, len(_PARTS)))
    shape, colour, kind = _PARTS[cls]
    col = np.clip(np.array(colour) + rng.integers(-30, 31, 3), 0, 255)
    poly = _unit_shape(shape, rng) * d / 2 + [cx, cy]
    return cls, paint_object(img, owner, poly, lambda h, w: _texture(kind, h, w, col, rng), k)


def _draw_plate(img, owner, rng, k: int) -> tuple[int, int]:
    """A square-ish plate: one shared grey-noise texture and dark rim for both classes; the class
    is only in the four corner marks (rings for plate-rings, crosses for plate-crosses)."""
    h, w = owner.shape
    cls = 4 + int(rng.integers(0, 2))
    side = float(rng.uniform(*PLATE_SIZE))
    sx, sy = side * rng.uniform(0.85, 1.15), side * rng.uniform(0.85, 1.15)
    cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
    a = rng.uniform(-0.3, 0.3)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    poly = (unit * [sx, sy]) @ rot.T + [cx, cy]
    grey = float(rng.uniform(110, 200))
    area = paint_object(img, owner, poly, lambda hh, ww: np.clip(
        grey + rng.normal(0, 18, (hh, ww, 1)) + np.zeros((1, 1, 3)), 0, 255).astype(np.uint8), k)
    cv2.polylines(img, [np.round(poly).astype(np.int32)], True, (50, 50, 50), 2)
    mark = 0.13 * min(sx, sy)
    ink = (int(rng.integers(20, 70)),) * 3
    for u in (-0.3, 0.3):
        for v in (-0.3, 0.3):
            px, py = np.array([u * sx, v * sy]) @ rot.T + [cx, cy]
            if cls == 4:
                cv2.circle(img, (int(round(px)), int(round(py))), max(2, int(round(mark))), ink, 2)
            else:
                for dx, dy in ((1, 1), (1, -1)):
                    p0 = (int(round(px - dx * mark)), int(round(py - dy * mark)))
                    p1 = (int(round(px + dx * mark)), int(round(py + dy * mark)))
                    cv2.line(img, p0, p1, ink, 2)
    return cls, area


def proxy_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """One image and its annotations ``[{cls, segmentation, iscrowd}]`` (boxes come from the
    visible masks, as COCO's do)."""
    h, w = (int(v) for v in rng.integers(SIZES[0], SIZES[1] + 1, 2))
    img = _background(h, w, rng, clutter=int(rng.integers(5, 20)))
    owner = np.full((h, w), -1, np.int32)
    objs: list[tuple[int, int]] = []                      # (class, full area) per object
    n_plates = int(rng.choice([0, 1, 1, 2]))
    for _ in range(n_plates):                             # plates first: parts may occlude them
        objs.append(_draw_plate(img, owner, rng, len(objs)))
    for _ in range(int(rng.integers(2, 9))):              # scattered parts
        d = float(np.exp(rng.uniform(np.log(PART_SIZE[0]), np.log(PART_SIZE[1]))))
        objs.append(_draw_part(img, owner, rng, len(objs), rng.uniform(0, w), rng.uniform(0, h), d))
    if rng.uniform() < 0.5:                               # a crowd of overlapping parts
        cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
        d0 = float(rng.uniform(12, 28))
        for _ in range(int(rng.integers(4, 9))):
            d = d0 * float(rng.uniform(0.7, 1.3))
            objs.append(_draw_part(img, owner, rng, len(objs), cx + rng.normal(0, 0.45 * d0),
                                   cy + rng.normal(0, 0.45 * d0), d))
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    # mostly hidden objects are left unlabelled (plates need their marks: half must show)
    anns = visible_annotations(owner, objs, lambda cls: 0.5 if cls >= 4 else 0.3, min_pixels=12)
    return img, anns


def _proxy_item(job: tuple[int, int, int]) -> tuple[bytes, list[dict], int, int]:
    img, anns = proxy_image(np.random.default_rng(list(job)))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes(), anns, img.shape[0], img.shape[1]


def write_proxy(root: str | Path, n_train: int = 2000, n_val: int = 500, seed: int = 0,
                workers: int = 1) -> Path:
    """Write the proxy set in COCO layout: ``root/images/{train,val}``, ``root/annotations``."""
    jobs = {split: [(seed, k, i) for i in range(n)]
            for k, (split, n) in enumerate([("train", n_train), ("val", n_val)])}
    return write_coco_dataset(root, PROXY_CATEGORIES, jobs, _proxy_item, workers,
                              f"rtmdet proxy set (docs/proxy.md), seed {seed}", "proxy")
