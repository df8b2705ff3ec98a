"""DOTA patch splitting: exact window grids for both protocols, object clipping, index, padding."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import shapely

from rtmdet.data.dota import DOTA_CLASSES, parse_dota_labels
from rtmdet.data.dota_patches import (MULTI_SCALE, SINGLE_SCALE, multi_scale_windows,
                                      objects_in_window, sliding_windows, split_dota, window_starts)
from rtmdet.data.synthetic import format_dota_labels


def test_window_starts_hand_computed():
    assert window_starts(2000, 1024, 768) == [0, 768, 976]     # last one moved inward
    assert window_starts(1500, 1024, 768) == [0, 476]
    assert window_starts(1024, 1024, 768) == [0]
    assert window_starts(800, 1024, 768) == [0]
    assert window_starts(1792, 1024, 768) == [0, 768]          # exact fit: nothing moved


def _grid(w, h, protocol):
    out = []
    for rate in protocol["rates"]:
        out.append(sliding_windows(w, h, int(1024 / rate), int(protocol["gap"] / rate)))
    return out


def test_single_scale_grid_2000x1500():
    (wins,) = _grid(2000, 1500, SINGLE_SCALE)
    expect = [[x, y, x + 1024, y + 1024] for y in (0, 476) for x in (0, 768, 976)]
    np.testing.assert_array_equal(wins, expect)


def test_multi_scale_grid_2000x1500():
    half, one, one_half = _grid(2000, 1500, MULTI_SCALE)
    np.testing.assert_array_equal(half, [[0, 0, 2048, 2048]])          # 2000·1500/2048² > 0.6
    np.testing.assert_array_equal(one, [[x, y, x + 1024, y + 1024] for y in (0, 476) for x in (0, 524, 976)])
    # rate 1.5: window int(1024/1.5) = 682, overlap int(500/1.5) = 333, step 349.
    xs, ys = [0, 349, 698, 1047, 1318], [0, 349, 698, 818]
    np.testing.assert_array_equal(one_half, [[x, y, x + 682, y + 682] for y in ys for x in xs])
    for wins, w in ((one, 2000), (one_half, 2000)):          # every window fully inside
        assert (wins[:, 2] <= w).all() and (wins[:, 3] <= 1500).all()


def test_small_image_keeps_its_best_window():
    wins = sliding_windows(600, 500, 1024, 256)
    np.testing.assert_array_equal(wins, [[0, 0, 1024, 1024]])


def _ms_scales(protocol=MULTI_SCALE, size=1024):
    return [(int(size / r), int(protocol["gap"] / r)) for r in protocol["rates"]]


def test_multi_scale_rate_filter_is_over_all_scales_1024_square():
    # A 1024×1024 image: the 1024 and 682 windows pass img_rate_thr, so the 2048 window
    # (rate 0.25) is dropped instead of being kept as "the best of its scale".
    half, one, one_half = multi_scale_windows(1024, 1024, _ms_scales())
    assert half.shape == (0, 4)
    np.testing.assert_array_equal(one, [[0, 0, 1024, 1024]])
    np.testing.assert_array_equal(one_half, [[x, y, x + 682, y + 682] for y in (0, 342) for x in (0, 342)])


def test_multi_scale_small_images_get_one_window_in_all():
    # 600×500: only the 682 window passes (300000 / 682² = 0.645 > 0.6).
    half, one, one_half = multi_scale_windows(600, 500, _ms_scales())
    assert len(half) == 0 and len(one) == 0
    np.testing.assert_array_equal(one_half, [[0, 0, 682, 682]])
    # 400×400: no window of any scale passes; the single best one (682, rate 0.344) is kept.
    half, one, one_half = multi_scale_windows(400, 400, _ms_scales())
    assert (len(half), len(one), len(one_half)) == (0, 0, 1)


def test_rate_threshold_boundary_is_strict():
    # 100×60 under a 100 window: rate exactly 0.6 is not > 0.6; the 50 windows all pass.
    big, small = multi_scale_windows(100, 60, [(100, 20), (50, 10)])
    assert len(big) == 0 and len(small) == 6
    big, small = multi_scale_windows(100, 61, [(100, 20), (50, 10)])      # rate 0.61 passes
    np.testing.assert_array_equal(big, [[0, 0, 100, 100]])


def test_ties_for_the_best_window_are_all_kept():
    # 150×40: both 100 windows have rate 0.4 < 0.6: every window within 0.01 of the best stays.
    np.testing.assert_array_equal(sliding_windows(150, 40, 100, 20), [[0, 0, 100, 100], [50, 0, 150, 100]])


def test_split_image_multi_scale_small_image_writes_one_patch(tmp_path):
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img/S1.png"), np.full((500, 600, 3), 90, np.uint8))
    index = split_dota(tmp_path / "img", None, tmp_path / "out", rates=MULTI_SCALE["rates"],
                       gap=MULTI_SCALE["gap"], workers=1)
    assert [(e["rate"], e["size"]) for e in index["patches"]] == [(1.5, 682)]


def test_objects_in_window_iof_and_clipping():
    sq = lambda x0, y0, s: np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]], np.float32)  # noqa: E731
    quads = np.stack([sq(100, 100, 50), sq(950, 10, 100), sq(980, 10, 100), sq(2000, 0, 10)])
    idx, qs, cut = objects_in_window(quads, np.array([0, 0, 1024, 1024]), iof_thr=0.7)
    assert idx.tolist() == [0, 1] and cut.tolist() == [False, True]       # iof 1, 0.74; 0.44 dropped
    np.testing.assert_array_equal(qs[0], quads[0])
    clipped = shapely.Polygon(qs[1])
    assert clipped.equals(shapely.box(950, 10, 1024, 110))
    idx, _, _ = objects_in_window(quads, np.array([0, 0, 1024, 1024]), iof_thr=0.4)
    assert idx.tolist() == [0, 1, 2]


def test_split_writes_patches_labels_and_index(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    w, h = 1300, 700
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "img/P7.png"), img)
    objs = []
    for _ in range(30):
        q = cv2.boxPoints(((rng.uniform(0, w), rng.uniform(0, h)), (rng.uniform(20, 80), rng.uniform(10, 30)),
                           rng.uniform(0, 180)))
        objs.append((q, DOTA_CLASSES[int(rng.integers(0, 15))], 0))
    (tmp_path / "lab/P7.txt").write_text(format_dota_labels(objs))
    index = split_dota(tmp_path / "img", tmp_path / "lab", tmp_path / "out", rates=(1.0,), gap=256,
                       workers=1)
    assert [(p["x"], p["y"]) for p in index["patches"]] == [(0, 0), (276, 0)]
    src_quads, _, _ = parse_dota_labels(tmp_path / "lab/P7.txt")     # as written (0.1 px)
    originals = [shapely.Polygon(q) for q in src_quads]
    for p in index["patches"]:
        patch = cv2.imread(str(tmp_path / "out/images" / f"{p['patch']}.png"))
        assert patch.shape == (1024, 1024, 3)
        np.testing.assert_array_equal(patch[:h, :1024], img[:, p["x"]:p["x"] + 1024])
        assert (patch[h:] == 114).all()                              # padded bottom
        quads, labels, diff = parse_dota_labels(tmp_path / "out/labelTxt" / f"{p['patch']}.txt")
        assert len(quads) == p["objects"]
        win = shapely.box(p["x"], p["y"], p["x"] + 1024, p["y"] + 1024)
        expect = sum(o.intersection(win).area / o.area >= 0.7 for o in originals)
        assert len(quads) == expect
        for q, d in zip(quads, diff):                                # back in original pixels
            back = shapely.Polygon(q / p["scale"] + [p["x"], p["y"]])
            k = max(range(len(originals)), key=lambda i: originals[i].intersection(back).area)
            if d:            # cut: the clipped part or its min-area rectangle, never bigger
                clip = originals[k].intersection(win)
                assert back.buffer(0.2).contains(clip) and back.area <= 1.01 * originals[k].area
            else:                                                    # whole: the same corners
                np.testing.assert_allclose(q / p["scale"] + [p["x"], p["y"]], src_quads[k], atol=1e-3)
    saved = json.loads((tmp_path / "out/index.json").read_text())
    assert saved["patches"] == index["patches"] and saved["gap"] == 256


def test_multiscale_patches_are_resized(tmp_path):
    (tmp_path / "img").mkdir()
    # 1700×1300: the 2048 window (rate 0.53) and the 682 windows both pass img_rate_thr 0.5.
    cv2.imwrite(str(tmp_path / "img/P1.png"), np.full((1300, 1700, 3), 50, np.uint8))
    index = split_dota(tmp_path / "img", None, tmp_path / "out", rates=(0.5, 1.5), gap=500,
                       img_rate_thr=0.5, workers=1)
    by_rate = {r: [p for p in index["patches"] if p["rate"] == r] for r in (0.5, 1.5)}
    assert len(by_rate[0.5]) == 1 and by_rate[0.5][0]["scale"] == pytest.approx(0.5)
    xs, ys = [0, 349, 698, 1018], [0, 349, 618]
    assert [(p["x"], p["y"]) for p in by_rate[1.5]] == [(x, y) for y in ys for x in xs]
    assert by_rate[1.5][0]["scale"] == pytest.approx(1024 / 682)
    patch = cv2.imread(str(tmp_path / "out/images" / f"{by_rate[0.5][0]['patch']}.png"))
    assert patch.shape == (1024, 1024, 3)
