"""Synthetic COCO- and DOTA-format datasets, generated deterministically from a seed.

Real COCO and DOTA cannot be downloaded everywhere the project runs, so the project ships a
generator whose output is byte-for-byte in the real on-disk formats. Every loader, transform and
the full training pipeline are exercised on it; pointing ``data.root`` at the real folders then
changes nothing but the path. Objects differ in shape, colour and texture (so a detector can learn
them), sit on cluttered backgrounds, range from ~8 px to half the image, occlude each other and
are truncated by the border. Segmentations are traced from the *visible* pixels, like COCO's.
Each image draws from its own ``(seed, split, index)`` random stream, so any subset is reproducible.
"""
from __future__ import annotations

from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from rtmdet.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

# Non-contiguous ids on purpose: the loader's id <-> label mapping must be exercised.
COCO_CATEGORIES: list[tuple[int, str]] = [
    (1, "disk"), (3, "box"), (5, "triangle"), (8, "star"),
    (10, "cross"), (13, "hexagon"), (17, "diamond"), (21, "chevron"),
]
# Base colour (BGR) and texture per class: the cues a detector can learn.
_STYLE = [((40, 40, 220), "solid"), ((220, 120, 30), "hstripes"), ((40, 200, 40), "checker"),
          ((30, 200, 230), "dots"), ((200, 40, 200), "gradient"), ((200, 200, 40), "vstripes"),
          ((60, 110, 180), "noise"), ((240, 240, 240), "outline")]

# (name, length range px, aspect range long/short, BGR colour) for the DOTA-style generator.
DOTA_OBJECTS: list[tuple[str, tuple[int, int], tuple[float, float], tuple[int, int, int]]] = [
    ("small-vehicle", (14, 28), (1.8, 2.4), (230, 230, 230)),
    ("large-vehicle", (30, 60), (2.5, 4.0), (40, 160, 230)),
    ("ship", (40, 160), (3.0, 6.0), (250, 250, 250)),
    ("plane", (50, 140), (1.0, 1.3), (210, 210, 210)),
    ("storage-tank", (25, 90), (1.0, 1.0), (190, 200, 205)),
    ("tennis-court", (60, 110), (2.0, 2.3), (60, 150, 60)),
    ("swimming-pool", (30, 80), (1.5, 2.5), (220, 170, 40)),
]


# ----------------------------------------------------------------------------- shapes
def _unit_shape(cls: int, rng: np.random.Generator) -> np.ndarray:
    """Polygon (K, 2) inside the unit circle for class index ``cls``."""
    t = lambda n, off=0.0: np.linspace(0, 2 * np.pi, n, endpoint=False) + off  # noqa: E731
    circ = lambda a, r=1.0: np.stack([r * np.cos(a), r * np.sin(a)], 1)  # noqa: E731
    if cls == 0:                                           # ellipse
        p = circ(t(32)) * [1.0, rng.uniform(0.7, 1.0)]
    elif cls == 1:                                         # rectangle
        a = rng.uniform(0.5, 1.0)
        p = np.array([[-1, -a], [1, -a], [1, a], [-1, a]]) * 0.8
    elif cls == 2:
        p = circ(t(3, -np.pi / 2))
    elif cls == 3:                                         # 5-point star
        p = circ(t(10, -np.pi / 2), np.tile([1.0, 0.45], 5))
    elif cls == 4:                                         # plus sign
        w = 0.3
        p = np.array([[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1],
                      [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]])
    elif cls == 5:
        p = circ(t(6))
    elif cls == 6:                                         # rhombus
        p = np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]])
    else:                                                  # chevron / arrow head
        p = np.array([[-1, -0.8], [0.2, -0.8], [1, 0], [0.2, 0.8], [-1, 0.8], [-0.2, 0]])
    a = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return p.astype(np.float64) @ rot.T


def _texture(kind: str, h: int, w: int, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    base = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(4, int(rng.integers(4, 9)))
    if kind == "hstripes":
        base = base * (0.55 + 0.45 * ((yy // period) % 2))[..., None]
    elif kind == "vstripes":
        base = base * (0.55 + 0.45 * ((xx // period) % 2))[..., None]
    elif kind == "checker":
        base = base * (0.5 + 0.5 * (((xx // period) + (yy // period)) % 2))[..., None]
    elif kind == "dots":
        dots = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 3) ** 2
        base = np.where(dots[..., None], 30.0, base)
    elif kind == "gradient":
        base = base * (0.3 + 0.7 * xx / max(w - 1, 1))[..., None]
    elif kind == "noise":
        base = base + rng.normal(0, 35, (h, w, 1))
    return np.clip(base, 0, 255).astype(np.uint8)


def _background(h: int, w: int, rng: np.random.Generator, clutter: int) -> np.ndarray:
    """Low-saturation gradient, random strokes and noise: distractors without class colours."""
    c0, c1 = rng.uniform(60, 190, 3), rng.uniform(60, 190, 3)
    c0 = c0.mean() + 0.3 * (c0 - c0.mean())
    c1 = c1.mean() + 0.3 * (c1 - c1.mean())
    g = (np.arange(h) / max(h - 1, 1))[:, None, None]
    img = (c0 * (1 - g) + c1 * g) * np.ones((1, w, 1))
    img = img.astype(np.uint8).copy()
    for _ in range(clutter):
        grey = int(rng.integers(40, 220))
        col = (grey, grey + int(rng.integers(-15, 16)), grey + int(rng.integers(-15, 16)))
        col = tuple(int(np.clip(c, 0, 255)) for c in col)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.line(img, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), col,
                     int(rng.integers(1, 4)))
        elif kind == 1:
            cv2.circle(img, (x, y), int(rng.integers(3, max(4, w // 8))), col, int(rng.integers(1, 3)))
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 60)), y + int(rng.integers(4, 60))), col, -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _polygons_from_mask(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


# ----------------------------------------------------------------------------- COCO
def synth_coco_image(rng: np.random.Generator, size_range: tuple[int, int] = (320, 640),
                     max_objects: int = 20, crowd_prob: float = 0.1,
                     shape: tuple[int, int] | None = None):
    """One image and its annotations (without ids): ``(img, [dict(category, segmentation, iscrowd)])``.

    ``shape`` = (h, w) fixes the size (e.g. COCO's typical 480×640 for the data benchmark);
    otherwise both sides are drawn from ``size_range``.
    """
    h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))  # always drawn:
    if shape is not None:                         # the rest of the random stream stays the same
        h, w = shape
    img = _background(h, w, rng, clutter=int(rng.integers(10, 40)))
    owner = np.full((h, w), -1, np.int32)
    objs: list[tuple[int, float]] = []
    for _ in range(int(rng.integers(0, max_objects + 1))):
        cls = int(rng.integers(0, len(COCO_CATEGORIES)))
        d = float(np.exp(rng.uniform(np.log(8), np.log(0.5 * min(h, w)))))
        cx, cy = rng.uniform(-0.1 * d, w + 0.1 * d), rng.uniform(-0.1 * d, h + 0.1 * d)
        poly = _unit_shape(cls, rng) * d / 2 + [cx, cy]

        def tex(th: int, tw: int, cls: int = cls) -> np.ndarray:
            colour = np.clip(np.array(_STYLE[cls][0]) + rng.integers(-25, 26, 3), 0, 255)
            return _texture(_STYLE[cls][1], th, tw, colour, rng)
        area = paint_object(img, owner, poly, tex, len(objs))
        if area == 0:
            continue
        if _STYLE[cls][1] == "outline":
            cv2.polylines(img, [np.round(poly).astype(np.int32)], True, (20, 20, 20), 2)
        objs.append((cls, float(area)))
    anns = visible_annotations(owner, objs, lambda cls: 0.25, min_pixels=16)
    if rng.uniform() < crowd_prob:                         # a crowd region stored as RLE
        anns.append(_draw_crowd(img, owner, rng))
    return img, anns


def paint_object(img: np.ndarray, owner: np.ndarray, poly: np.ndarray, tex_fn, k: int) -> int:
    """Fill ``poly`` with the texture ``tex_fn(h, w)`` (called only when the polygon covers a
    pixel, so an off-image object draws nothing from the stream) and claim its pixels for object
    ``k`` in ``owner``; returns the object's full, unoccluded area in pixels."""
    h, w = owner.shape
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return 0
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sel = m[y0:y1, x0:x1].astype(bool)
    img[y0:y1, x0:x1][sel] = tex_fn(y1 - y0, x1 - x0)[sel]
    owner[m.astype(bool)] = k
    return int(len(ys))


def visible_annotations(owner: np.ndarray, objs: list[tuple[int, float]], min_share,
                        min_pixels: int) -> list[dict]:
    """``[{cls, segmentation, iscrowd: 0}]`` traced from the *visible* pixels of each object, as
    COCO's are; objects showing fewer than ``max(min_pixels, min_share(cls) × full area)`` pixels
    are mostly hidden and left unlabelled."""
    anns = []
    for k in np.unique(owner[owner >= 0]).tolist():
        cls, full_area = objs[k]
        visible = owner == k
        if visible.sum() < max(min_pixels, min_share(cls) * full_area):
            continue
        polys = _polygons_from_mask(visible)
        if polys:
            anns.append({"cls": cls, "segmentation": polys, "iscrowd": 0})
    return anns


def _draw_crowd(img: np.ndarray, owner: np.ndarray, rng: np.random.Generator) -> dict:
    """A tight cluster of small disks on background pixels, annotated as one iscrowd RLE."""
    h, w = owner.shape
    cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
    m = np.zeros((h, w), np.uint8)
    r = max(3, int(min(h, w) * 0.02))
    for _ in range(int(rng.integers(6, 11))):
        c = (int(cx + rng.normal(0, 3 * r)), int(cy + rng.normal(0, 3 * r)))
        cv2.circle(m, c, r, 1, -1)
    m = (m.astype(bool) & (owner < 0))
    img[m] = (40, 40, 220)
    return {"cls": 0, "segmentation": {"size": [h, w], "counts": uncompressed_rle(m)}, "iscrowd": 1}


def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE (column-major run lengths, starting with a run of zeros)."""
    flat = np.asarray(mask, bool).flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] == 1 else runs


def _coco_item(args: tuple) -> tuple[bytes, list[dict], int, int]:
    seed, split, index, size_range, max_objects, shape = args
    rng = np.random.default_rng([seed, split, index])
    img, anns = synth_coco_image(rng, size_range, max_objects, shape=shape)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes(), anns, img.shape[0], img.shape[1]


def write_synth_coco(root: str | Path, n_train: int = 64, n_val: int = 16, seed: int = 0,
                     size_range: tuple[int, int] = (320, 640), max_objects: int = 20,
                     workers: int = 1, shape: tuple[int, int] | None = None) -> Path:
    """Write ``root/images/{train,val}/*.jpg`` and ``root/annotations/instances_{train,val}.json``."""
    jobs = {split: [(seed, k, i, tuple(size_range), max_objects, shape) for i in range(n)]
            for k, (split, n) in enumerate([("train", n_train), ("val", n_val)])}
    return write_coco_dataset(root, COCO_CATEGORIES, jobs, _coco_item, workers,
                              f"rtmdet synthetic COCO, seed {seed}")


def write_coco_dataset(root: str | Path, categories: list[tuple[int, str]],
                       jobs: dict[str, list[tuple]], item_fn, workers: int = 1,
                       description: str = "", supercategory: str = "shape") -> Path:
    """The COCO writer every generator shares: ``item_fn(job) -> (jpeg bytes, anns, h, w)`` per
    image, where an ann is ``{cls, segmentation (polygons or uncompressed RLE), iscrowd}``; boxes
    and areas are computed here from the masks, so they always agree with the segmentation."""
    root = Path(root)
    cats = [{"id": cid, "name": name, "supercategory": supercategory} for cid, name in categories]
    for split_idx, (split, split_jobs) in enumerate(jobs.items()):
        n = len(split_jobs)
        images, annotations = [], []
        pool = Pool(workers) if workers > 1 else None
        results = pool.imap(item_fn, split_jobs, chunksize=4) if pool else map(item_fn, split_jobs)
        for i, (jpg, anns, h, w) in enumerate(tqdm(results, total=n, desc=f"{root.name} {split}",
                                                   disable=n < 100)):
            image_id = split_idx * 1_000_000 + i + 1
            name = f"{image_id:012d}.jpg"
            atomic_write_bytes(root / "images" / split / name, jpg)
            images.append({"id": image_id, "file_name": name, "width": w, "height": h})
            for a in anns:
                seg = a["segmentation"]
                rle = (mask_utils.frPyObjects(seg, h, w) if a["iscrowd"] else
                       mask_utils.merge(mask_utils.frPyObjects(seg, h, w)))
                area = float(mask_utils.area(rle))
                if area < 1:
                    continue
                annotations.append({
                    "id": len(annotations) + 1 + split_idx * 10_000_000, "image_id": image_id,
                    "category_id": categories[a["cls"]][0], "segmentation": seg, "area": area,
                    "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
                    "iscrowd": a["iscrowd"]})
        if pool:
            pool.close()
            pool.join()
        atomic_write_json(root / "annotations" / f"instances_{split}.json", {
            "info": {"description": description}, "licenses": [],
            "images": images, "annotations": annotations, "categories": cats})
    return root


# ----------------------------------------------------------------------------- DOTA
def synth_dota_image(rng: np.random.Generator, size_range: tuple[int, int] = (1500, 3000),
                     n_objects: tuple[int, int] = (20, 120)):
    """A large aerial-like image and its objects ``[(quad (4, 2), class name, difficult)]``."""
    h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
    low = rng.uniform(70, 150, (max(2, h // 64), max(2, w // 64), 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img + rng.normal(0, 8, (h, w, 1)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 9))):               # roads
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, (95, 95, 95), int(rng.integers(15, 40)))
    objs, placed = [], []
    for _ in range(int(rng.integers(n_objects[0], n_objects[1] + 1))):
        ci = int(rng.integers(0, len(DOTA_OBJECTS)))
        name, (lo, hi), (a0, a1), colour = DOTA_OBJECTS[ci]
        length = float(rng.uniform(lo, hi))
        width = length / float(rng.uniform(a0, a1))
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        r = 0.5 * np.hypot(length, width)
        if any(np.hypot(cx - x, cy - y) < 0.8 * (r + rr) for x, y, rr in placed):
            continue                                       # aerial objects rarely overlap
        placed.append((cx, cy, r))
        angle = 0.0 if name == "storage-tank" else float(rng.uniform(0, 180))
        quad = cv2.boxPoints(((cx, cy), (length, width), angle))
        col = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in colour)
        if name == "storage-tank":
            cv2.circle(img, (int(cx), int(cy)), int(length / 2), col, -1)
            cv2.circle(img, (int(cx), int(cy)), int(length / 4), (120, 120, 120), 2)
        else:
            cv2.fillPoly(img, [np.round(quad).astype(np.int32)], col)
            inner = cv2.boxPoints(((cx, cy), (length * 0.6, width * 0.3), angle))
            cv2.fillPoly(img, [np.round(inner).astype(np.int32)], tuple(c // 2 for c in col))
        objs.append((quad.astype(np.float64), name, int(length < 18)))
    return img, objs


def format_dota_labels(objs: list[tuple[np.ndarray, str, int]], gsd: float | None = 0.5) -> str:
    lines = ["imagesource:synthetic", f"gsd:{gsd}"] if gsd is not None else []
    for quad, name, diff in objs:
        coords = " ".join(f"{v:.1f}" for v in np.asarray(quad).reshape(-1))
        lines.append(f"{coords} {name} {diff}")
    return "\n".join(lines) + "\n"


def _dota_item(args: tuple[int, int, int, tuple[int, int]]) -> tuple[bytes, str]:
    seed, split, index, size_range = args
    img, objs = synth_dota_image(np.random.default_rng([seed, 100 + split, index]), size_range)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes(), format_dota_labels(objs)


def write_synth_dota(root: str | Path, n_train: int = 6, n_val: int = 2, seed: int = 0,
                     size_range: tuple[int, int] = (1500, 3000), workers: int = 2) -> Path:
    """Write ``root/{train,val}/images/P*.png`` and ``root/{train,val}/labelTxt/P*.txt``."""

    root = Path(root)
    for split_idx, (split, n) in enumerate([("train", n_train), ("val", n_val)]):
        jobs = [(seed, split_idx, i, tuple(size_range)) for i in range(n)]
        with Pool(max(1, workers)) as pool:
            for i, (png, txt) in enumerate(tqdm(pool.imap(_dota_item, jobs), total=n,
                                                desc=f"synth-dota {split}")):
                atomic_write_bytes(root / split / "images" / f"P{i:04d}.png", png)
                atomic_write_text(root / split / "labelTxt" / f"P{i:04d}.txt", txt)
    return root
