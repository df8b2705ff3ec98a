"""Every geometric op keeps image, boxes, mask polygons and DOTA quads consistent.

Test samples are solid-colour objects on a grey background, so consistency can be checked
against the *pixels*: after any op, the colour under each box/quad centre must still be the
object's colour, boxes must equal the hull of the (clipped) mask polygons and of the rasterised
masks, and boxes must equal the clipped hull of the quads.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import shapely

from rtmdet.data import transforms as T
from rtmdet.data.cached_mix import mixup_blend, mosaic_combine
from rtmdet.data.dota import quads_to_boxes, quads_to_rboxes

COLOURS = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255], [255, 0, 255],
                    [255, 255, 0], [0, 128, 255], [128, 0, 255]], np.uint8)


def rect_sample(rng: np.random.Generator, h: int = 300, w: int = 400, n: int = 6) -> dict:
    """Non-overlapping axis-aligned rectangles (one per grid cell), some cut by the border."""
    img = np.full((h, w, 3), 128, np.uint8)
    boxes, labels, masks = [], [], []
    cells = [(r, c) for r in range(2) for c in range(4)]
    for k, i in enumerate(rng.choice(len(cells), n, replace=False)):
        r, c = cells[i]
        cw, ch = w / 4, h / 2
        x1 = c * cw + rng.uniform(0, cw * 0.3) - (15 if c == 0 and k % 2 else 0)
        y1 = r * ch + rng.uniform(0, ch * 0.3)
        x2, y2 = x1 + rng.uniform(0.4, 0.65) * cw, y1 + rng.uniform(0.4, 0.65) * ch
        x1, y1, x2, y2 = (float(round(v)) for v in (x1, y1, x2, y2))
        lab = k % len(COLOURS)
        img[int(max(y1, 0)):int(y2), int(max(x1, 0)):int(x2)] = COLOURS[lab]
        x1, y1 = max(x1, 0.0), max(y1, 0.0)             # annotations lie inside the image
        boxes.append([x1, y1, x2, y2])
        labels.append(lab)
        masks.append([np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)])
    return {"img": img, "boxes": np.array(boxes, np.float32), "labels": np.array(labels, np.int64),
            "masks": masks}


def quad_sample(rng: np.random.Generator, h: int = 320, w: int = 320, n: int = 5) -> dict:
    img = np.full((h, w, 3), 128, np.uint8)
    quads, labels = [], []
    for k in range(n):
        cx, cy = (k + 0.5) * w / n, rng.uniform(0.3, 0.7) * h
        q = cv2.boxPoints(((cx, cy), (rng.uniform(25, 50), rng.uniform(10, 20)), rng.uniform(0, 180)))
        cv2.fillPoly(img, [np.round(q).astype(np.int32)], COLOURS[k].tolist())
        quads.append(q)
        labels.append(k)
    quads = np.array(quads, np.float32)
    return {"img": img, "quads": quads, "boxes": quads_to_boxes(quads, h, w),
            "labels": np.array(labels, np.int64), "difficult": np.zeros(n, bool)}


def check_rects(s: dict, colour_check: bool = True) -> None:
    h, w = s["img"].shape[:2]
    b = s["boxes"]
    assert len(b) == len(s["labels"]) == len(s["masks"])
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= h).all()
    assert ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all()
    for box, polys in zip(b, s["masks"]):
        pts = np.concatenate(polys)
        hull = [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
        np.testing.assert_allclose(hull, box, atol=1e-3)
    raster = T.rasterize(s["masks"], h, w)
    for box, m in zip(b, raster):
        if (box[2] - box[0]) >= 2 and (box[3] - box[1]) >= 2:
            ys, xs = np.nonzero(m)
            np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=1.01)
    if colour_check:
        for box, lab in zip(b, s["labels"]):
            if (box[2] - box[0]) >= 6 and (box[3] - box[1]) >= 6:
                cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
                np.testing.assert_allclose(s["img"][cy, cx], COLOURS[lab], atol=3)


def check_quads(s: dict) -> None:
    h, w = s["img"].shape[:2]
    np.testing.assert_allclose(s["boxes"], quads_to_boxes(s["quads"], h, w), atol=1e-3)
    for q, lab in zip(s["quads"], s["labels"]):
        cx, cy = q.mean(0)
        if 2 <= cx < w - 2 and 2 <= cy < h - 2:
            np.testing.assert_allclose(s["img"][int(cy), int(cx)], COLOURS[lab], atol=3)


@pytest.mark.parametrize("seed", range(4))
def test_geometric_ops_keep_rect_targets_consistent(seed):
    rng = np.random.default_rng(seed)
    s = rect_sample(rng)
    check_rects(s)
    check_rects(T.hflip(s))
    check_rects(T.vflip(s))
    check_rects(T.transpose(s))
    check_rects(T.resize_keep_ratio(s, 517), colour_check=True)
    check_rects(T.pad(s, 512))
    resized = T.random_resize(s, 400, (0.5, 2.0), rng)
    crop = T.random_crop(resized, 200, rng)
    if crop is not None:
        check_rects(crop)
        assert crop["img"].shape[0] <= 200 and crop["img"].shape[1] <= 200


def test_hflip_hand_computed_and_involution():
    s = {"img": np.zeros((10, 20, 3), np.uint8), "boxes": np.array([[2, 1, 5, 4]], np.float32),
         "labels": np.array([0]), "quads": np.array([[[2, 1], [5, 1], [5, 4], [2, 4]]], np.float32)}
    f = T.hflip(s)
    np.testing.assert_array_equal(f["boxes"], [[15, 1, 18, 4]])
    np.testing.assert_array_equal(T.hflip(f)["boxes"], s["boxes"])
    np.testing.assert_array_equal(T.hflip(f)["quads"], s["quads"])
    assert s["boxes"][0, 0] == 2                       # input not modified


def test_crop_drops_vanished_boxes_and_returns_none_when_empty():
    s = {"img": np.zeros((100, 300, 3), np.uint8), "labels": np.array([0, 1]),
         "boxes": np.array([[0, 0, 50, 50], [250, 10, 300, 60]], np.float32)}
    for seed in range(20):                             # replay the crop's own offset draws
        out = T.random_crop(s, 100, np.random.default_rng(seed))
        r = np.random.default_rng(seed)
        assert r.integers(0, 1) == 0                   # y: no margin
        ox = int(r.integers(0, 201))
        expect = [b for b in s["boxes"] if min(b[2], ox + 100) > max(b[0], ox)]
        if not expect:
            assert out is None
        else:
            assert len(out["boxes"]) == len(expect)
            np.testing.assert_allclose(out["boxes"][:, 0], [max(b[0] - ox, 0) for b in expect])


def test_clip_polygon_matches_shapely():
    rng = np.random.default_rng(1)
    for _ in range(30):
        pts = rng.uniform(-50, 150, (7, 2)).astype(np.float32)
        poly = shapely.convex_hull(shapely.multipoints(pts))
        ring = np.asarray(poly.exterior.coords)[:-1].astype(np.float32)
        clipped = T.clip_polygon(ring, 0, 0, 100, 80)
        ref = poly.intersection(shapely.box(0, 0, 100, 80)).area
        got = shapely.Polygon(clipped).area if len(clipped) >= 3 else 0.0
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-3)


def test_hsv_jitter_follows_yolox_formula():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    s = {"img": img, "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
    rng = np.random.default_rng(5)
    out = T.hsv_jitter(s, (5, 30, 30), rng)
    r = np.random.default_rng(5)
    g = (r.uniform(-1, 1, 3) * [5, 30, 30] * r.integers(0, 2, 3)).astype(np.int16)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + g[0]) % 180
    hsv[..., 1:] = np.clip(hsv[..., 1:] + g[1:], 0, 255)
    np.testing.assert_array_equal(out["img"], cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR))


@pytest.mark.parametrize("seed", range(3))
def test_quads_consistent_under_flips_resize_crop(seed):
    rng = np.random.default_rng(seed)
    s = quad_sample(rng)
    for op in (T.hflip, T.vflip, T.transpose, lambda x: T.random_flip_rotated(x, rng),
               lambda x: T.resize_keep_ratio(x, 480), lambda x: T.pad(x, 400)):
        check_quads(op(s))
    crop = T.random_crop(T.resize_keep_ratio(s, 500), 256, rng)
    if crop is not None:
        check_quads(crop)


def test_rboxes_le90_hand_cases_and_shapely():
    q = np.array([[[0, 0], [10, 0], [10, 4], [0, 4]], [[0, 0], [4, 0], [4, 10], [0, 10]]], np.float32)
    r = quads_to_rboxes(q)
    np.testing.assert_allclose(r[0], [5, 2, 10, 4, 0], atol=1e-5)
    np.testing.assert_allclose(r[1, :4], [2, 5, 10, 4], atol=1e-5)
    assert r[1, 4] == pytest.approx(-math.pi / 2, abs=1e-5)
    rng = np.random.default_rng(0)
    quads = np.array([cv2.boxPoints(((50, 50), (rng.uniform(5, 40), rng.uniform(5, 40)),
                                     rng.uniform(0, 180))) for _ in range(20)], np.float32)
    for q, (cx, cy, w, h, t) in zip(quads, quads_to_rboxes(quads)):
        assert w >= h and -math.pi / 2 <= t < math.pi / 2
        back = cv2.boxPoints(((cx, cy), (w, h), math.degrees(t)))
        assert shapely.Polygon(back).symmetric_difference(shapely.Polygon(q)).area < 1e-2 * w * h


@pytest.mark.parametrize("seed", range(3))
def test_mosaic_and_mixup_keep_targets_consistent(seed):
    rng = np.random.default_rng(seed)
    tiles = [rect_sample(rng, int(rng.integers(200, 400)), int(rng.integers(200, 400))) for _ in range(4)]
    m = mosaic_combine(tiles, 256, rng)
    assert m["img"].shape == (512, 512, 3)
    check_rects(m)
    assert len(m["boxes"]) <= sum(len(t["boxes"]) for t in tiles)
    a = T.pad(T.resize_keep_ratio(rect_sample(rng), 256), 256)
    b = T.pad(T.resize_keep_ratio(rect_sample(rng), 256), 256)
    mixed = mixup_blend(a, b, 256, flip=True)
    check_rects(mixed, colour_check=False)
    assert len(mixed["boxes"]) == len(a["boxes"]) + len(b["boxes"])
    expect = ((a["img"].astype(int) + b["img"][:, ::-1].astype(int)) // 2).astype(np.uint8)
    np.testing.assert_array_equal(mixed["img"], expect)
    np.testing.assert_allclose(mixed["boxes"][len(a["boxes"]):, 0], 256 - b["boxes"][:, 2])
