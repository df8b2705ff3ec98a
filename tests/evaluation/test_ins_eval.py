"""COCO mask AP of RTMDet-Ins: hand-built detections scored by faster-coco-eval and pycocotools,
the letterbox → original-image mask mapping, and `evaluate` writing segm AP next to bbox AP."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from rtmdet.models.build import build_model
from rtmdet.config import load_config
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.evaluation.coco import STAT_NAMES, coco_evaluate
from rtmdet.evaluation.evaluate import evaluate
from rtmdet.evaluation.segm import encode_masks, gt_masks_of_image, to_coco_segm_results

BACKENDS = ("faster", "pycocotools")


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="module")
def gt_file(tmp_path_factory) -> Path:
    """Two images, three polygons: a 20×20 square and a triangle (class 1), an L (class 2)."""
    square = [10, 10, 30, 10, 30, 30, 10, 30]
    triangle = [40, 5, 58, 5, 49, 30]
    ell = [2, 2, 8, 2, 8, 20, 20, 20, 20, 26, 2, 26]
    anns = []
    for i, (img, cat, poly) in enumerate([(1, 1, square), (1, 1, triangle), (2, 2, ell)]):
        xs, ys = poly[0::2], poly[1::2]
        bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        anns.append({"id": i + 1, "image_id": img, "category_id": cat, "segmentation": [poly],
                     "bbox": bbox, "area": float(bbox[2] * bbox[3]), "iscrowd": 0})
    data = {"images": [{"id": 1, "width": 64, "height": 40, "file_name": "a.jpg"},
                       {"id": 2, "width": 32, "height": 32, "file_name": "b.jpg"}],
            "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
            "annotations": anns}
    path = tmp_path_factory.mktemp("segm") / "gt.json"
    path.write_text(json.dumps(data))
    return path


def detections(gt_file: Path, edit=None) -> list[dict]:
    """One result per gt, with the gt's own rasterised mask (optionally edited)."""
    out = []
    for image_id in (1, 2):
        masks, cats = gt_masks_of_image(gt_file, image_id)
        for k, (m, cat) in enumerate(zip(masks, cats)):
            if edit is not None:
                m = edit(image_id, k, m)
            [rle] = encode_masks(m[None])
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            out.append({"image_id": image_id, "category_id": cat, "bbox": [x, y, w, h],
                        "score": 0.9 - 0.1 * k, "segmentation": rle})
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_perfect_masks_score_one(gt_file, backend):
    stats, precision, cat_ids = coco_evaluate(gt_file, detections(gt_file), "segm", backend)
    assert cat_ids == [1, 2]
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["AR100"] == pytest.approx(1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_scores_zero(gt_file, backend):
    stats, _, _ = coco_evaluate(gt_file, [], "segm", backend)
    assert all(v == 0.0 for v in stats.values())
    # Detections present but every mask empty: IoU 0 with everything.
    empty = detections(gt_file, edit=lambda i, k, m: np.zeros_like(m))
    stats, _, _ = coco_evaluate(gt_file, empty, "segm", backend)
    assert stats["AP"] == 0.0 and stats["AP50"] == 0.0


def shift_l(image_id, k, m):
    """Shift the L (image 2) 1 px right: an IoU between 0.5 and 0.95."""
    if image_id != 2:
        return m
    out = np.zeros_like(m)
    out[:, 1:] = m[:, :-1]
    return out


def test_partial_overlap_hand_computed_and_backends_agree(gt_file):
    dets = detections(gt_file, edit=shift_l)
    gt_l, _ = gt_masks_of_image(gt_file, 2)
    iou = mask_utils.iou([dets[-1]["segmentation"]], encode_masks(gt_l), [0])[0, 0]
    # Class 1 is perfect (AP 1); class 2 (one gt, one det) scores 1 at each of the ten IoU
    # thresholds 0.50:0.05:0.95 that its IoU reaches and 0 elsewhere.
    thresholds = np.linspace(0.5, 0.95, 10)
    expected = (1.0 + float((thresholds <= iou + 1e-12).mean())) / 2
    assert 0.5 < iou < 0.95
    results = {b: coco_evaluate(gt_file, dets, "segm", b)[0] for b in BACKENDS}
    assert results["faster"]["AP"] == pytest.approx(expected, abs=1e-9)
    for k in STAT_NAMES:
        assert results["faster"][k] == pytest.approx(results["pycocotools"][k], abs=1e-9), k
    # Box AP is unaffected by the mask edit only where boxes still match: the box moved too.
    assert coco_evaluate(gt_file, dets, "bbox", "faster")[0]["AP"] < 1.0


def test_letterboxed_logits_map_to_original_pixels():
    """A 2×4-cell block of positive stride-8 logits on a 64² canvas holding a 60×80 image
    letterboxed at scale 0.8. Bilinear ×8 puts the ±20 crossings on the cell borders: canvas
    rows 8..24, cols 16..48, i.e. original rows 10..30 and cols 20..60 (edges, not pixel
    centres, so the mask spans exactly the pixels 10..29 × 20..59; bilinear interpolation
    only rounds off its corners)."""
    logits = torch.full((1, 8, 8), -20.0)
    logits[0, 1:3, 2:6] = 20.0
    det = {"boxes": torch.tensor([[16.0, 8.0, 48.0, 24.0]]), "scores": torch.tensor([0.8]),
           "labels": torch.tensor([1]), "mask_logits_lowres": logits}
    meta = {"image_id": 7, "scale": 0.8, "ori_shape": (60, 80)}
    [r] = to_coco_segm_results(det, meta, cat_ids=[4, 9])
    assert r["category_id"] == 9 and r["image_id"] == 7
    assert r["bbox"] == pytest.approx([20.0, 10.0, 40.0, 20.0])
    m = mask_utils.decode(r["segmentation"]).astype(bool)
    expected = np.zeros((60, 80), bool)
    expected[10:30, 20:60] = True
    assert not (m & ~expected).any()
    assert np.array_equal(m.any(1), expected.any(1)) and np.array_equal(m.any(0), expected.any(0))
    assert m.sum() >= 0.94 * expected.sum()
    json.dumps(r)                               # RLE counts are str, so results serialise


def test_evaluate_writes_segm_next_to_bbox(tmp_path):
    root = write_synth_coco(tmp_path / "synth", n_train=2, n_val=3, seed=1,
                            size_range=(96, 128), max_objects=4)
    cfg = load_config("rtmdet-ins-tiny", {"data.root": str(root), "data.img_size": 96,
                                          "model.head.num_classes": 8, "eval.score_thr": 0.001,
                                          "eval.max_per_img": 20})
    torch.manual_seed(0)
    model = build_model(cfg.model)
    report = evaluate(model, cfg, tmp_path / "out", backend="pycocotools")
    assert set(report["segm_metrics"]) == set(STAT_NAMES) == set(report["metrics"])
    assert report["num_detections"] > 0           # random head scores ≈ 0.01 > 0.001
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["segm_metrics"] == report["segm_metrics"]
    bbox = json.loads((tmp_path / "out" / "results.bbox.json").read_text())
    segm = json.loads((tmp_path / "out" / "results.segm.json").read_text())
    assert len(bbox) == len(segm) == report["num_detections"]
    assert all("segmentation" not in r for r in bbox)
    gt = json.loads((root / "annotations" / "instances_val.json").read_text())
    shapes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    for b, s in zip(bbox, segm):
        assert b == {k: v for k, v in s.items() if k != "segmentation"}
        assert tuple(s["segmentation"]["size"]) == shapes[s["image_id"]]
    # The written masks give the reported AP when scored independently.
    again, _, _ = coco_evaluate(root / "annotations" / "instances_val.json", segm, "segm",
                                "faster")
    assert again["AP"] == pytest.approx(report["segm_metrics"]["AP"], abs=1e-9)
