"""Cached Mosaic and cached MixUp (SPEC §7), plus their uncached counterparts for the ablation.

The point of the caches: an uncached Mosaic reads 4 images from disk per sample and an uncached
MixUp one more; with caches every step reads only the current image and re-uses recent ones.
The Mosaic cache holds *loaded* samples; the MixUp cache holds samples after step 7 (already
mosaics), so one output mixes 8 images. Each DataLoader worker owns its own caches (they live in
the dataset object each worker copies), as in the official implementation. Caches are plain
lists of sample dicts, so they can be saved in a checkpoint and restored for an exact resume.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .preprocess import PAD_VALUE
from .transforms import Sample, affine, clip_to_image, hflip, pad, resize_keep_ratio

LoadRandom = Callable[[], Sample]          # draws and loads a random dataset image (uncached mode)


class SampleCache:
    """A bounded list: ``push`` appends and, when over ``max_size``, pops one item.

    ``pop="fifo"`` removes the oldest (insertion order kept), ``"random"`` a uniform random one.
    """

    def __init__(self, max_size: int, pop: str = "random") -> None:
        if max_size < 1:
            raise ValueError(f"cache size must be ≥ 1, got {max_size}")
        if pop not in ("random", "fifo"):
            raise ValueError(f"pop mode must be 'random' or 'fifo', got {pop!r}")
        self.max_size, self.pop = max_size, pop
        self.items: list[Sample] = []

    def push(self, sample: Sample, rng: np.random.Generator) -> None:
        self.items.append(sample)
        if len(self.items) > self.max_size:
            idx = 0 if self.pop == "fifo" else int(rng.integers(0, len(self.items)))
            self.items.pop(idx)

    def __len__(self) -> int:
        return len(self.items)


def mosaic_combine(tiles: list[Sample], size: int, rng: np.random.Generator) -> Sample:
    """Four samples on a 2S×2S canvas of 114 around a random centre (top-left tile first)."""
    s2 = 2 * size
    cx = int(rng.uniform(0.5, 1.5) * size)
    cy = int(rng.uniform(0.5, 1.5) * size)
    canvas = np.full((s2, s2, 3), PAD_VALUE, np.uint8)
    parts = []
    for k, tile in enumerate(tiles):
        h0, w0 = tile["img"].shape[:2]
        f = min(size / h0, size / w0)
        w, h = int(w0 * f), int(h0 * f)              # mmcv's imresize truncates here
        img = tile["img"] if (w, h) == (w0, h0) else cv2.resize(tile["img"], (w, h),
                                                                interpolation=cv2.INTER_LINEAR)
        # Paste box on the canvas, then the matching window of the resized tile.
        if k == 0:
            x1, y1, x2, y2 = max(cx - w, 0), max(cy - h, 0), cx, cy
            tx, ty = w - (x2 - x1), h - (y2 - y1)
        elif k == 1:
            x1, y1, x2, y2 = cx, max(cy - h, 0), min(cx + w, s2), cy
            tx, ty = 0, h - (y2 - y1)
        elif k == 2:
            x1, y1, x2, y2 = max(cx - w, 0), cy, cx, min(s2, cy + h)
            tx, ty = w - (x2 - x1), 0
        else:
            x1, y1, x2, y2 = cx, cy, min(cx + w, s2), min(s2, cy + h)
            tx, ty = 0, 0
        canvas[y1:y2, x1:x2] = img[ty:ty + (y2 - y1), tx:tx + (x2 - x1)]
        parts.append(affine(tile, canvas, w / w0, h / h0, x1 - tx, y1 - ty))
    out = dict(tiles[0])
    out["img"] = canvas
    out["boxes"] = np.concatenate([p["boxes"] for p in parts]).astype(np.float32)
    out["labels"] = np.concatenate([p["labels"] for p in parts])
    for key in ("quads", "difficult"):
        if key in tiles[0]:
            out[key] = np.concatenate([p[key] for p in parts])
    if "masks" in tiles[0]:
        out["masks"] = [m for p in parts for m in p["masks"]]
    return clip_to_image(out, s2, s2)


def mixup_blend(sample: Sample, other: Sample, size: int, flip: bool) -> Sample:
    """Blend ``other`` (keep-ratio fitted into S×S, padded, optionally flipped) half-and-half."""
    h0, w0 = other["img"].shape[:2]
    f = min(size / h0, size / w0)
    if f != 1.0:
        other = resize_keep_ratio(other, f * max(h0, w0))
    other = pad(other, size)
    if flip:
        other = hflip(other)
    other = clip_to_image(other, size, size)
    base = pad(sample, size)
    # (a + b) >> 1 == int(0.5·a + 0.5·b): the official float blend truncated, in uint8 arithmetic.
    img = ((base["img"].astype(np.uint16) + other["img"]) >> 1).astype(np.uint8)
    out = dict(base)
    out["img"] = img
    out["boxes"] = np.concatenate([base["boxes"], other["boxes"]]).astype(np.float32)
    out["labels"] = np.concatenate([base["labels"], other["labels"]])
    for key in ("quads", "difficult"):
        if key in base:
            out[key] = np.concatenate([base[key], other[key]])
    if "masks" in base:
        out["masks"] = list(base["masks"]) + list(other["masks"])
    return out


class Mosaic:
    """Cached (or, with ``cached=False``, disk-loading) 4-image Mosaic."""

    def __init__(self, size: int, cache_size: int = 40, pop: str = "random", cached: bool = True,
                 prob: float = 1.0) -> None:
        self.size, self.cached, self.prob = size, cached, prob
        self.cache = SampleCache(cache_size, pop)

    def __call__(self, sample: Sample, rng: np.random.Generator, load_random: LoadRandom) -> Sample:
        if self.cached:
            self.cache.push(sample, rng)
            if len(self.cache) <= 4:                     # too few to mix: pass through
                return sample
            if rng.uniform() > self.prob:
                return sample
            picks = rng.integers(0, len(self.cache), 3)
            others = [self.cache.items[int(i)] for i in picks]
        else:
            if rng.uniform() > self.prob:
                return sample
            others = [load_random() for _ in range(3)]
        return mosaic_combine([sample, *others], self.size, rng)


class MixUp:
    """Cached MixUp over post-pad samples (or, uncached, over one freshly loaded image)."""

    def __init__(self, size: int, cache_size: int = 20, pop: str = "random", cached: bool = True,
                 prob: float = 1.0, max_tries: int = 15) -> None:
        self.size, self.cached, self.prob, self.max_tries = size, cached, prob, max_tries
        self.cache = SampleCache(cache_size, pop)

    def __call__(self, sample: Sample, rng: np.random.Generator, load_random: LoadRandom) -> Sample:
        if self.cached:
            self.cache.push(sample, rng)
            if len(self.cache) <= 1:
                return sample
            if rng.uniform() > self.prob:
                return sample
            for _ in range(self.max_tries):               # prefer a partner that has boxes
                other = self.cache.items[int(rng.integers(0, len(self.cache)))]
                if len(other["boxes"]):
                    break
        else:
            if rng.uniform() > self.prob:
                return sample
            other = load_random()
            if len(other["boxes"]) == 0:
                return sample
        return mixup_blend(sample, other, self.size, flip=bool(rng.uniform() > 0.5))
