"""DOTA patches (SPEC §10, DOTA protocol): cut large images into fixed-size patches for training
and inference, and merge the patches' detections back into full images at test time.

Single scale: 1024×1024 windows with 256 px overlap. Multi-scale: rates 0.5 / 1.0 / 1.5 with
500 px overlap, i.e. windows of ``int(1024/rate)`` with overlap ``int(500/rate)`` on the original
image, each resized to 1024. Window starts are ``step·i`` with the last one moved inward to
``W − size`` (no partial windows); windows with ≤ ``img_rate_thr`` of their area inside the image
are dropped. As in the official split, that filter looks at the windows of all scales together:
only when no window of any scale passes are the best ones kept (every window within 0.01 of the
best rate), so a small image gives one padded patch in all, not one per scale. An object is
kept in a window when ≥ ``iof_thr`` of its area is inside; a cut object gets its clipped polygon
(reduced to 4 corners) and is marked difficult. An index JSON records each patch's origin and
scale in the original image so detections can be merged back: shifted and rescaled into the
original image, then merged per image and class with rotated NMS (0.1).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import shapely
import torch
from tqdm import tqdm

from rtmdet.geometry.rotated_nms import batched_rotated_nms
from rtmdet.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

from .bad_input import BadInput
from .dota import DOTA_CLASSES, IMAGE_SUFFIXES, parse_dota_labels
from .synthetic import format_dota_labels

SINGLE_SCALE = {"rates": (1.0,), "gap": 256}
MULTI_SCALE = {"rates": (0.5, 1.0, 1.5), "gap": 500}


def window_starts(length: int, size: int, step: int) -> list[int]:
    n = 1 if length <= size else math.ceil((length - size) / step + 1)
    starts = [step * i for i in range(n)]
    if len(starts) > 1 and starts[-1] + size > length:
        starts[-1] = length - size
    return starts


def _grid(width: int, height: int, size: int, gap: int) -> np.ndarray:
    if gap >= size:
        raise ValueError(f"overlap {gap} must be smaller than the window {size}")
    step = size - gap
    xs, ys = window_starts(width, size, step), window_starts(height, size, step)
    return np.array([[x, y, x + size, y + size] for y in ys for x in xs], np.int64)


def multi_scale_windows(width: int, height: int, scales: list[tuple[int, int]],
                        img_rate_thr: float = 0.6) -> list[np.ndarray]:
    """Per ``(size, gap)`` scale, the (M, 4) windows ``x0, y0, x1, y1`` kept for one image.

    The ``img_rate_thr`` test is applied to the windows of every scale at once (the official
    rule): filtering each scale on its own would give a 1024×1024 image under the multi-scale
    protocol a mostly padded 2048 window as well as its 1024 one.
    """
    grids = [_grid(width, height, size, gap) for size, gap in scales]
    wins = np.concatenate(grids)
    inside = ((np.minimum(wins[:, 2], width) - wins[:, 0])
              * (np.minimum(wins[:, 3], height) - wins[:, 1]))
    rate = inside / ((wins[:, 2] - wins[:, 0]) * (wins[:, 3] - wins[:, 1])).astype(np.float64)
    keep = rate > img_rate_thr
    if not keep.any():
        keep = np.abs(rate - rate.max()) < 0.01
    bounds = np.cumsum([0] + [len(g) for g in grids])
    return [g[keep[a:b]] for g, a, b in zip(grids, bounds[:-1], bounds[1:])]


def sliding_windows(width: int, height: int, size: int, gap: int,
                    img_rate_thr: float = 0.6) -> np.ndarray:
    """(M, 4) windows ``x0, y0, x1, y1`` (x1 − x0 = size) covering a ``width``×``height`` image."""
    return multi_scale_windows(width, height, [(size, gap)], img_rate_thr)[0]


def objects_in_window(quads: np.ndarray, window: np.ndarray, iof_thr: float = 0.7
                      ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Indices of objects kept in ``window``, their (possibly clipped) quads, and a cut flag."""
    if len(quads) == 0:
        return np.zeros(0, np.int64), [], np.zeros(0, bool)
    x0, y0, x1, y1 = (float(v) for v in window)
    lo, hi = quads.min(1), quads.max(1)
    cand = np.flatnonzero((lo[:, 0] < x1) & (hi[:, 0] > x0) & (lo[:, 1] < y1) & (hi[:, 1] > y0))
    polys = shapely.polygons(quads[cand].astype(np.float64))
    polys = shapely.make_valid(polys)
    inter = shapely.intersection(polys, shapely.box(x0, y0, x1, y1))
    area = shapely.area(polys)
    iof = np.where(area > 0, shapely.area(inter) / np.maximum(area, 1e-12), 0.0)
    idx, out, cut = [], [], []
    for j, i in enumerate(cand):
        if iof[j] < iof_thr:
            continue
        idx.append(i)
        if iof[j] >= 1 - 1e-6:
            out.append(quads[i])
            cut.append(False)
        else:
            out.append(_four_corners(inter[j]))
            cut.append(True)
    return np.asarray(idx, np.int64), out, np.asarray(cut, bool)


def _four_corners(geom: shapely.Geometry) -> np.ndarray:
    """A clipped polygon as 4 points: itself if it is a quadrilateral, else its min-area rectangle."""
    if geom.geom_type == "Polygon":
        ring = np.asarray(geom.exterior.coords)[:-1]
        if len(ring) == 4:
            return ring.astype(np.float32)
    rect = shapely.minimum_rotated_rectangle(geom)
    return np.asarray(rect.exterior.coords)[:4].astype(np.float32)


def patch_name(stem: str, rate: float, x: int, y: int) -> str:
    return f"{stem}__{rate:g}__{x}___{y}"


def split_image(img_path: Path, label_path: Path | None, out_dir: Path, rates: tuple[float, ...],
                gap: int, patch_size: int = 1024, iof_thr: float = 0.7, img_rate_thr: float = 0.6,
                pad_value: int = 114, save_empty: bool = True, on_bad: str = "skip",
                classes: tuple[str, ...] = DOTA_CLASSES) -> tuple[list[dict[str, Any]], Counter]:
    """Write the patches of one image; returns their index entries and the skip counts."""
    bad = BadInput(on_bad)
    img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if img is None:
        bad("missing image file" if not img_path.exists() else "unreadable or corrupt image",
            str(img_path))
        return [], bad.counts
    quads, labels, diff = (parse_dota_labels(label_path, classes, bad) if label_path is not None
                           else (np.zeros((0, 4, 2), np.float32), np.zeros(0, np.int64),
                                 np.zeros(0, bool)))
    h, w = img.shape[:2]
    entries = []
    scales = [(int(patch_size / rate), int(gap / rate)) for rate in rates]
    for rate, (size, _), windows in zip(rates, scales,
                                        multi_scale_windows(w, h, scales, img_rate_thr)):
        scale = patch_size / size
        for x0, y0, x1, y1 in windows:
            idx, qs, cut = objects_in_window(quads, np.array([x0, y0, x1, y1]), iof_thr)
            if not save_empty and len(idx) == 0:
                continue
            patch = np.full((size, size, 3), pad_value, np.uint8)
            crop = img[y0:min(y1, h), x0:min(x1, w)]
            patch[:crop.shape[0], :crop.shape[1]] = crop
            if size != patch_size:
                patch = cv2.resize(patch, (patch_size, patch_size), interpolation=cv2.INTER_LINEAR)
            name = patch_name(img_path.stem, rate, int(x0), int(y0))
            ok, buf = cv2.imencode(".png", patch, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            atomic_write_bytes(out_dir / "images" / f"{name}.png", buf.tobytes())
            objs = [((q - np.array([x0, y0], np.float32)) * scale, classes[labels[i]],
                     int(diff[i] or c)) for i, q, c in zip(idx, qs, cut)]
            atomic_write_text(out_dir / "labelTxt" / f"{name}.txt", format_dota_labels(objs, None))
            entries.append({"patch": name, "image": img_path.stem, "x": int(x0), "y": int(y0),
                            "size": size, "scale": scale, "rate": rate, "width": w, "height": h,
                            "objects": len(idx)})
    return entries, bad.counts


def _job(args: tuple) -> tuple[list[dict[str, Any]], Counter]:
    return split_image(*args)


def split_dota(img_dir: str | Path, ann_dir: str | Path | None, out_dir: str | Path,
               rates: tuple[float, ...] = (1.0,), gap: int = 256, patch_size: int = 1024,
               iof_thr: float = 0.7, img_rate_thr: float = 0.6, pad_value: int = 114,
               save_empty: bool = True, workers: int = 2, on_bad: str = "skip") -> dict[str, Any]:
    """Split every image of ``img_dir`` in parallel; writes ``out_dir/index.json`` and returns it."""
    img_dir, out_dir = Path(img_dir), Path(out_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: image folder not found")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    jobs = []
    for p in images:
        label = Path(ann_dir) / f"{p.stem}.txt" if ann_dir is not None else None
        if label is not None and not label.is_file():
            BadInput(on_bad)("missing label file", str(label))
            continue
        jobs.append((p, label, out_dir, tuple(rates), gap, patch_size, iof_thr, img_rate_thr,
                     pad_value, save_empty, on_bad))
    entries, counts = [], Counter()
    with Pool(max(1, workers)) as pool:
        for e, c in tqdm(pool.imap_unordered(_job, jobs), total=len(jobs), desc="split-dota"):
            entries.extend(e)
            counts.update(c)
    entries.sort(key=lambda e: (e["image"], e["rate"], e["y"], e["x"]))
    # The source folders let evaluation find the full-image labels for the merged detections.
    index = {"patch_size": patch_size, "rates": list(rates), "gap": gap, "iof_thr": iof_thr,
             "images": str(img_dir.resolve()),
             "labels": str(Path(ann_dir).resolve()) if ann_dir is not None else None,
             "skipped": dict(counts), "patches": entries}
    atomic_write_json(out_dir / "index.json", index)
    return index


# ----------------------------------------------------------------------------- merge (test time)
Dets = Mapping[str, Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class PatchInfo:
    patch: str
    image: str
    x: float
    y: float
    scale: float


def load_patch_index(source: str | Path | dict | list[dict]) -> dict[str, PatchInfo]:
    """Read the split step's patch index (a JSON path or the parsed object) → patch id → info."""
    items = json.loads(Path(source).read_text()) if isinstance(source, (str, Path)) else source
    if isinstance(items, dict) and "patches" in items:
        items = items["patches"]
    if not isinstance(items, list):
        raise ValueError(f"{source}: patch index must be a JSON list of patch entries")
    out: dict[str, PatchInfo] = {}
    for n, it in enumerate(items):
        try:
            info = PatchInfo(str(it["patch"]), str(it["image"]), float(it["x"]), float(it["y"]),
                             float(it["scale"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"patch index entry {n}: needs patch, image, x, y, scale ({e})") from None
        if info.scale <= 0:
            raise ValueError(f"patch index entry {n} ({info.patch}): scale must be > 0")
        out[info.patch] = info
    return out


def patch_to_image(rboxes: torch.Tensor, info: PatchInfo) -> torch.Tensor:
    """Patch-pixel boxes → original-image boxes (isotropic scale, so θ is unchanged)."""
    out = rboxes.clone()
    out[:, :4] = rboxes[:, :4] / info.scale
    out[:, 0] += info.x
    out[:, 1] += info.y
    return out


def merge_patch_detections(patch_dets: Dets, index: Mapping[str, PatchInfo],
                           iou_thr: float = 0.1, max_per_img: int | None = None
                           ) -> dict[str, dict[str, torch.Tensor]]:
    """Shift/scale every patch's detections back to its image and merge per image and class
    with rotated NMS ``iou_thr`` (a box cut by a patch border is kept in the patch that saw
    it best). Every image of ``index`` appears in the result, possibly empty."""
    unknown = [p for p in patch_dets if p not in index]
    if unknown:
        raise KeyError(f"{len(unknown)} patch(es) missing from the patch index, e.g. {unknown[0]!r}")
    grouped: dict[str, list] = {info.image: [] for info in index.values()}
    for patch, d in patch_dets.items():
        info = index[patch]
        grouped[info.image].append((patch_to_image(d["rboxes"].detach().cpu().double(), info),
                                    d["scores"].detach().cpu().double(), d["labels"].cpu().long()))
    merged = {}
    for image, parts in grouped.items():
        if parts:
            boxes, scores, labels = (torch.cat(x) for x in zip(*parts))
        else:
            boxes, scores, labels = torch.zeros(0, 5, dtype=torch.float64), \
                torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
        keep = batched_rotated_nms(boxes, scores, labels, iou_thr)
        if max_per_img is not None:
            keep = keep[:max_per_img]
        merged[image] = {"rboxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
    return merged
