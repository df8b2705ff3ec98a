"""Single-image augmentations of SPEC §7 on sample dicts, keeping every target consistent.

A sample is a dict: ``img`` (H, W, 3) BGR uint8, ``boxes`` (N, 4) xyxy float32, ``labels`` (N,)
int64 and optionally ``masks`` (per instance, a list of (K, 2) float32 polygons), ``quads``
(N, 4, 2) float32 DOTA quadrilaterals and ``difficult`` (N,) bool; other keys ride along.
Every geometric op applies the *same* affine map to boxes, polygons and quads. Boxes are clipped
to the image; mask polygons are clipped too (so a rasterised mask never leaks into padding);
quads are not (a rotated box keeps its full extent, its hull box is the clipped part).
Ops never modify their input arrays: cached samples are shared, not copied.
Random numbers come from an explicit ``np.random.Generator`` so a pipeline can be replayed.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .preprocess import PAD_VALUE

Sample = dict[str, Any]
_PER_INSTANCE = ("boxes", "labels", "quads", "difficult")


def select(sample: Sample, keep: np.ndarray) -> Sample:
    """Keep the instances where ``keep`` is True, in every per-instance field."""
    out = dict(sample)
    for k in _PER_INSTANCE:
        if k in sample:
            out[k] = sample[k][keep]
    if "masks" in sample:
        out["masks"] = [m for m, kp in zip(sample["masks"], keep) if kp]
    return out


def affine(sample: Sample, img: np.ndarray, sx: float, sy: float, dx: float, dy: float,
           flip_w: float | None = None) -> Sample:
    """New sample with image ``img`` and targets mapped by x' = sx·x + dx, y' = sy·y + dy.

    With ``flip_w`` the map is followed by the horizontal flip x'' = flip_w − x'.
    """
    out = dict(sample)
    out["img"] = img

    def pts(p: np.ndarray) -> np.ndarray:
        q = p * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32)
        if flip_w is not None:
            q[..., 0] = flip_w - q[..., 0]
        return q.astype(np.float32)

    b = sample["boxes"].reshape(-1, 2, 2)
    b = pts(b).reshape(-1, 4)
    if flip_w is not None:
        b = b[:, [2, 1, 0, 3]]
    out["boxes"] = b
    if "quads" in sample:
        out["quads"] = pts(sample["quads"])
    if "masks" in sample:
        out["masks"] = [[pts(p) for p in m] for m in sample["masks"]]
    return out


def clip_polygon(poly: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Sutherland–Hodgman clip of a (K, 2) polygon to a rectangle (exact: the clip is convex)."""
    def clip(p: np.ndarray, axis: int, bound: float, keep_less: bool) -> np.ndarray:
        if len(p) == 0:
            return p
        nxt = np.roll(p, -1, axis=0)
        inside = (p[:, axis] <= bound) if keep_less else (p[:, axis] >= bound)
        inside_n = np.roll(inside, -1)
        out = []
        for a, b, ia, ib in zip(p, nxt, inside, inside_n):
            if ia:
                out.append(a)
            if ia != ib:
                t = (bound - a[axis]) / (b[axis] - a[axis])
                out.append(a + t * (b - a))
        return np.asarray(out, np.float32).reshape(-1, 2)

    p = poly.astype(np.float32)
    if p[:, 0].min() >= x0 and p[:, 0].max() <= x1 and p[:, 1].min() >= y0 and p[:, 1].max() <= y1:
        return p
    for axis, bound, less in ((0, x0, False), (0, x1, True), (1, y0, False), (1, y1, True)):
        p = clip(p, axis, bound, less)
    return p


def clip_to_image(sample: Sample, h: int, w: int) -> Sample:
    """Clip boxes (and mask polygons) to the image and drop instances left without area."""
    out = dict(sample)
    b = sample["boxes"].copy()
    b[:, 0::2] = b[:, 0::2].clip(0, w)
    b[:, 1::2] = b[:, 1::2].clip(0, h)
    out["boxes"] = b
    if "masks" in sample:
        out["masks"] = [[q for q in (clip_polygon(p, 0, 0, w, h) for p in m) if len(q) >= 3]
                        for m in sample["masks"]]
    return select(out, (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))


def resize_keep_ratio(sample: Sample, long_side: float) -> Sample:
    """Scale so the long side becomes ``long_side`` (each side ``int(x·f + 0.5)``, bilinear)."""
    h, w = sample["img"].shape[:2]
    f = long_side / max(h, w)
    nw, nh = max(1, int(w * f + 0.5)), max(1, int(h * f + 0.5))
    img = sample["img"] if (nw, nh) == (w, h) else cv2.resize(sample["img"], (nw, nh),
                                                              interpolation=cv2.INTER_LINEAR)
    return affine(sample, img, nw / w, nh / h, 0.0, 0.0)


def random_resize(sample: Sample, base: int, ratio_range: tuple[float, float],
                  rng: np.random.Generator) -> Sample:
    """Keep-ratio resize to a square target ``int(base·r)``, r ~ U(ratio_range) (mmdet RandomResize)."""
    r = rng.uniform(ratio_range[0], ratio_range[1])
    return resize_keep_ratio(sample, int(base * r))


def random_crop(sample: Sample, size: int, rng: np.random.Generator) -> Sample | None:
    """Crop ``size``×``size`` (or less where the image is smaller) at a uniform valid offset.

    Returns None when no box survives, so the caller can draw another image (SPEC §7 step 4).
    """
    h, w = sample["img"].shape[:2]
    oy = int(rng.integers(0, max(h - size, 0) + 1))
    ox = int(rng.integers(0, max(w - size, 0) + 1))
    img = sample["img"][oy:oy + size, ox:ox + size]
    out = clip_to_image(affine(sample, img, 1.0, 1.0, -ox, -oy), img.shape[0], img.shape[1])
    return out if len(out["boxes"]) else None


def hsv_jitter(sample: Sample, gains: tuple[int, int, int], rng: np.random.Generator) -> Sample:
    """YOLOX HSV: gains U(−1, 1)·(h, s, v), each kept with p ½, truncated to int; hue wraps mod 180."""
    g = rng.uniform(-1, 1, 3) * np.asarray(gains, np.float64)
    g = (g * rng.integers(0, 2, 3)).astype(np.int16)
    if not g.any():
        return sample
    # One uint8 lookup table per channel instead of int16 arithmetic on the whole image: the
    # same values (hue stays < 180, so its wrap is exact over the LUT), 3 passes fewer.
    v = np.arange(256, dtype=np.int16)
    lut = np.stack([(v + g[0]) % 180, np.clip(v + g[1], 0, 255), np.clip(v + g[2], 0, 255)], -1)
    hsv = cv2.cvtColor(sample["img"], cv2.COLOR_BGR2HSV)
    hsv = cv2.LUT(hsv, lut.astype(np.uint8).reshape(1, 256, 3))
    out = dict(sample)
    out["img"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return out


def hflip(sample: Sample) -> Sample:
    w = sample["img"].shape[1]
    # cv2.flip (any channel count): 0.06 ms vs 2.2 ms (640²) for numpy's reversed-stride copy.
    return affine(sample, cv2.flip(sample["img"], 1), 1.0, 1.0, 0.0, 0.0, flip_w=w)


def random_hflip(sample: Sample, prob: float, rng: np.random.Generator) -> Sample:
    return hflip(sample) if rng.uniform() < prob else sample


def vflip(sample: Sample) -> Sample:
    """Vertical flip as transpose ∘ hflip ∘ transpose, so only one flip formula exists."""
    return transpose(hflip(transpose(sample)))


def transpose(sample: Sample) -> Sample:
    """Swap x and y (a diagonal reflection); with flips it generates the dihedral group."""
    out = dict(sample)
    out["img"] = np.ascontiguousarray(sample["img"].transpose(1, 0, 2))
    out["boxes"] = sample["boxes"][:, [1, 0, 3, 2]]
    if "quads" in sample:
        out["quads"] = np.ascontiguousarray(sample["quads"][..., ::-1])
    if "masks" in sample:
        out["masks"] = [[np.ascontiguousarray(p[:, ::-1]) for p in m] for m in sample["masks"]]
    return out


def random_flip_rotated(sample: Sample, rng: np.random.Generator) -> Sample:
    """mmrotate's DOTA flips: horizontal, vertical or diagonal (both), each with p ¼."""
    u = rng.uniform()
    if u < 0.25:
        return hflip(sample)
    if u < 0.5:
        return vflip(sample)
    if u < 0.75:
        return vflip(hflip(sample))
    return sample


def pad(sample: Sample, size: int, value: int = PAD_VALUE) -> Sample:
    """Pad bottom/right to ``size``×``size``; targets are unchanged (the origin does not move)."""
    h, w = sample["img"].shape[:2]
    if (h, w) == (size, size):
        return sample
    img = np.full((max(h, size), max(w, size), 3), value, np.uint8)
    img[:h, :w] = sample["img"]
    out = dict(sample)
    out["img"] = img
    return out


def rasterize(masks: list[list[np.ndarray]], h: int, w: int) -> np.ndarray:
    """Polygon lists -> (N, h, w) bool via pycocotools (the same rasteriser COCO eval uses)."""
    out = np.zeros((len(masks), h, w), bool)
    for i, polys in enumerate(masks):
        flat = [p.astype(np.float64).reshape(-1).tolist() for p in polys if len(p) >= 3]
        if flat:
            out[i] = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(flat, h, w))) > 0
    return out


# DOTA classes whose objects are round (storage-tank, roundabout): their min-area-rectangle label
# is an axis-aligned square, which an arbitrary rotation would turn into a wrong tilted label.
ROUND_DOTA_LABELS = (9, 11)


def rotate(sample: Sample, angle_deg: float, border: int = 0) -> Sample:
    """Rotate image and targets by ``angle_deg`` (counter-clockwise on screen) about the image
    centre, keeping the canvas size; uncovered pixels get ``border``. Objects whose centre
    leaves the canvas are dropped; the rest keep their full quads (boxes are the clipped hulls).
    """
    img = sample["img"]
    h, w = img.shape[:2]
    # The same map in both frames: pixel i spans [i, i+1), so the continuous centre (w/2, h/2)
    # is the index-space centre ((w−1)/2, (h−1)/2). A right angle is then an exact np.rot90.
    m_img = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    m_pts = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0).astype(np.float32)
    out = dict(sample)
    out["img"] = cv2.warpAffine(img, m_img, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(border,) * 3)

    def pts(p: np.ndarray) -> np.ndarray:
        return (p @ m_pts[:, :2].T + m_pts[:, 2]).astype(np.float32)

    if "masks" in sample:
        out["masks"] = [[pts(p) for p in m] for m in sample["masks"]]
    if "quads" in sample:
        quads = pts(sample["quads"].reshape(-1, 4, 2))
        out["quads"] = quads
        lo, hi = quads.min(1), quads.max(1)
        centre = quads.mean(1)
    else:                                    # axis-aligned boxes only: rotate their corners
        b = sample["boxes"]
        corners = pts(np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], 1))
        lo, hi, centre = corners.min(1), corners.max(1), corners.mean(1)
    boxes = np.concatenate([lo, hi], 1).reshape(-1, 4).astype(np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    out["boxes"] = boxes
    keep = ((centre[:, 0] >= 0) & (centre[:, 0] < w) & (centre[:, 1] >= 0) & (centre[:, 1] < h)
            & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    return select(out, keep)


def random_rotate_rotated(sample: Sample, rng: np.random.Generator, prob: float = 0.5,
                          angle_range: float = 180.0,
                          round_labels: tuple[int, ...] = ROUND_DOTA_LABELS,
                          border: int = 0) -> Sample:
    """The DOTA recipe's random rotation (SPEC §10): with ``prob``, any angle in
    ±``angle_range`` degrees, or only a right angle (90, 180, −90) when the image holds a
    round-class object (see :data:`ROUND_DOTA_LABELS`)."""
    if rng.uniform() >= prob:
        return sample
    if np.isin(sample["labels"], round_labels).any():
        angle = float(rng.choice([90.0, 180.0, -90.0]))
    else:
        angle = float(rng.uniform(-angle_range, angle_range))
    return rotate(sample, angle, border)
