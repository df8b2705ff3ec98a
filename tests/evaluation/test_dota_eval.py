"""DOTA evaluation on hand-computed cases, patch merge and the submission writer."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rtmdet.data.dota_patches import load_patch_index, merge_patch_detections
from rtmdet.evaluation.dota_metric import (DOTA_CLASSES, eval_class, eval_rotated_map, voc_ap,
                                           write_dota_submission)
from rtmdet.geometry.rotated_iou import rbox_iou

torch.set_num_threads(1)
F64 = torch.float64


def _t(rows):
    return torch.tensor(rows, dtype=F64).reshape(-1, 5)


GT1, GT2 = [100.0, 100, 60, 20, 0.5], [300.0, 200, 80, 30, -1.0]


def _det_near(gt, dx):
    return [gt[0] + dx, gt[1], gt[2], gt[3], gt[4]]


def test_voc_ap_hand_computed():
    # tp, fp, tp → recall (.5, .5, 1), precision (1, .5, 2/3).
    rec, prec = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert voc_ap(rec, prec) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert voc_ap(rec, prec, "area") == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    with pytest.raises(ValueError):
        voc_ap(rec, prec, "voc12")


def test_two_gts_three_dets_known_order():
    gts = [(_t([GT1, GT2]), torch.tensor([False, False]))]
    # 0.9 hits GT1, 0.8 is far from both, 0.7 hits GT2 (rotated boxes, small shifts).
    dets = [(_t([_det_near(GT1, 2), [600.0, 600, 10, 10, 0], _det_near(GT2, -3)]),
             torch.tensor([0.9, 0.8, 0.7], dtype=F64))]
    r = eval_class(dets, gts)
    assert r["ap"] == pytest.approx((6 + 5 * 2 / 3) / 11) and r["num_gts"] == 2
    assert eval_class(dets, gts, mode="area")["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # Reordering the scores so the FP comes first: precision (0, .5, 2/3).
    dets_fp_first = [(dets[0][0], torch.tensor([0.8, 0.9, 0.7], dtype=F64))]
    assert eval_class(dets_fp_first, gts)["ap"] == pytest.approx(11 * (2 / 3) / 11)


def test_duplicate_detection_is_false_positive_and_multi_image():
    gts = [(_t([GT1]), torch.tensor([False])), (_t([GT2]), torch.tensor([False]))]
    dets = [(_t([_det_near(GT1, 1), _det_near(GT1, 2)]), torch.tensor([0.9, 0.6], dtype=F64)),
            (_t([_det_near(GT2, 1)]), torch.tensor([0.8], dtype=F64))]
    # Order: tp (img0), tp (img1), fp (duplicate) → AP 1 at full recall.
    assert eval_class(dets, gts)["ap"] == pytest.approx(1.0)
    dets[0] = (dets[0][0], torch.tensor([0.9, 0.85], dtype=F64))
    # tp, fp, tp: recall (.5,.5,1), precision (1,.5,2/3).
    assert eval_class(dets, gts)["ap"] == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_difficult_ignored():
    gts = [(_t([GT1, GT2]), torch.tensor([False, True]))]
    dets = [(_t([_det_near(GT2, 1), _det_near(GT1, 1)]), torch.tensor([0.9, 0.8], dtype=F64))]
    r = eval_class(dets, gts)
    assert r["num_gts"] == 1 and r["num_dets"] == 1 and r["ap"] == pytest.approx(1.0)
    gts_not_difficult = [(gts[0][0], torch.tensor([False, False]))]
    assert eval_class(dets, gts_not_difficult)["ap"] == pytest.approx(1.0)
    # A det on the difficult gt is not a TP either: alone it leaves AP 0.
    only_difficult = [(_t([_det_near(GT2, 1)]), torch.tensor([0.9], dtype=F64))]
    assert eval_class(only_difficult, gts)["ap"] == 0.0


def test_strict_threshold_at_exactly_half():
    gt = _t([[5.0, 5, 10, 10, 0]])
    det = _t([[5.0, 2.5, 10, 5, 0]])
    assert rbox_iou(det, gt).item() == 0.5
    gts, dets = [(gt, torch.tensor([False]))], [(det, torch.tensor([0.9], dtype=F64))]
    assert eval_class(dets, gts, strict=True)["ap"] == 0.0
    assert eval_class(dets, gts, strict=False)["ap"] == pytest.approx(1.0)


def test_map_over_classes():
    ann = {"a": {"rboxes": _t([GT1, GT2]), "labels": torch.tensor([0, 1]),
                 "difficult": torch.tensor([False, False])},
           "b": {"rboxes": _t([GT1]), "labels": torch.tensor([0]), "difficult": torch.tensor([False])}}
    dets = {"a": {"rboxes": _t([_det_near(GT1, 1), _det_near(GT2, 1)]),
                  "scores": torch.tensor([0.9, 0.9], dtype=F64), "labels": torch.tensor([0, 0])},
            "zzz": {"rboxes": _t([GT1]), "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}}
    r = eval_rotated_map(dets, ann, class_names=("c0", "c1", "c2"))
    # c0: one hit of two gts (the det on GT2 has the wrong class → unrelated) → 6/11; c1: 0.
    assert r["AP"]["c0"] == pytest.approx(6 / 11) and r["AP"]["c1"] == 0.0
    assert math.isnan(r["AP"]["c2"]) and r["mAP"] == pytest.approx(3 / 11)


def _index():
    # 2000×1000 image: two single-scale 1024 windows with 200 overlap, one 0.5-rate window.
    return [{"patch": "P0__0_0", "image": "P0", "x": 0, "y": 0, "scale": 1.0},
            {"patch": "P0__824_0", "image": "P0", "x": 824, "y": 0, "scale": 1.0},
            {"patch": "P0__ms", "image": "P0", "x": 0, "y": 0, "scale": 0.5},
            {"patch": "P1__0_0", "image": "P1", "x": 0, "y": 0, "scale": 1.0}]


def test_merge_box_cut_across_two_patches(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"patch_size": 1024, "patches": _index()}))   # dota_split form
    index = load_patch_index(path)
    true = [1000.0, 500, 100, 40, 0.3]
    patch_dets = {
        # Left patch sees the whole box; the right one a slightly shifted, weaker copy.
        "P0__0_0": {"rboxes": _t([true]), "scores": torch.tensor([0.9]), "labels": torch.tensor([3])},
        "P0__824_0": {"rboxes": _t([[176.0 + 4, 500, 96, 40, 0.3], [50.0, 50, 30, 10, 0.0]]),
                      "scores": torch.tensor([0.6, 0.8]), "labels": torch.tensor([3, 3])},
        # The half-resolution patch sees it at half the coordinates and size.
        "P0__ms": {"rboxes": _t([[500.0, 250, 50, 20, 0.3], [500.0, 250, 50, 20, 0.3]]),
                   "scores": torch.tensor([0.7, 0.5]), "labels": torch.tensor([3, 5])}}
    merged = merge_patch_detections(patch_dets, index, iou_thr=0.1)
    assert set(merged) == {"P0", "P1"} and merged["P1"]["rboxes"].shape == (0, 5)
    m = merged["P0"]
    assert m["scores"].tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert m["labels"].tolist() == [3, 3, 5]
    assert torch.allclose(m["rboxes"][0], _t([true])[0])
    assert torch.allclose(m["rboxes"][1], _t([[874.0, 50, 30, 10, 0.0]])[0])
    assert torch.allclose(m["rboxes"][2], _t([true])[0])       # other class: not suppressed
    with pytest.raises(KeyError):
        merge_patch_detections({"nope": patch_dets["P0__0_0"]}, index)


def test_patch_index_errors():
    with pytest.raises(ValueError, match="entry 0"):
        load_patch_index([{"patch": "a", "image": "b", "x": 0}])
    with pytest.raises(ValueError, match="scale"):
        load_patch_index([{"patch": "a", "image": "b", "x": 0, "y": 0, "scale": 0}])


def test_submission_files(tmp_path):
    dets = {"P0": {"rboxes": _t([[10.0, 20, 4, 2, math.pi / 2], GT1]),
                   "scores": torch.tensor([0.5, 0.25]), "labels": torch.tensor([0, 14])},
            "P1": {"rboxes": _t([]), "scores": torch.zeros(0), "labels": torch.zeros(0)}}
    paths = write_dota_submission(dets, tmp_path)
    assert len(paths) == 15 and paths[0].name == "Task1_plane.txt"
    assert paths[-1].name == f"Task1_{DOTA_CLASSES[-1]}.txt"
    assert (tmp_path / "Task1_plane.txt").read_text() == \
        "P0 0.500000 11.00 18.00 11.00 22.00 9.00 22.00 9.00 18.00\n"
    assert (tmp_path / "Task1_bridge.txt").read_text() == ""
    assert (tmp_path / "Task1_helicopter.txt").read_text().startswith("P0 0.250000 ")
