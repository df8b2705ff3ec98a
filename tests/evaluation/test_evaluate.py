"""COCO evaluation: faster-coco-eval equals pycocotools; the eval job writes its outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rtmdet
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.evaluation.coco import coco_evaluate, to_coco_results
from rtmdet.evaluation.evaluate import evaluate


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synth_coco(tmp_path_factory.mktemp("synth"), n_train=2, n_val=8, seed=1,
                            size_range=(96, 160), max_objects=8)


def gt_annotations(root: Path) -> list[dict]:
    data = json.loads((root / "annotations" / "instances_val.json").read_text())
    return [a for a in data["annotations"] if not a["iscrowd"]]


def test_perfect_detections_score_ap_one_in_both_backends(synth):
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 1.0} for a in gt_annotations(synth)]
    ann = synth / "annotations" / "instances_val.json"
    for backend in ("faster", "pycocotools"):
        stats, precision, _ = coco_evaluate(ann, dets, backend=backend)
        assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
        assert precision.shape[0] == 10 and precision.shape[1] == 101


def test_backends_agree_on_noisy_detections(synth):
    rng = np.random.default_rng(0)
    dets = []
    for a in gt_annotations(synth):
        x, y, w, h = a["bbox"]
        for _ in range(3):   # jittered duplicates, some with the wrong class
            jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
            cat = a["category_id"] if rng.random() > 0.2 else 1
            dets.append({"image_id": a["image_id"], "category_id": cat,
                         "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1),
                                  max(h + jitter[3], 1)], "score": float(rng.random())})
    ann = synth / "annotations" / "instances_val.json"
    fast, p_fast, _ = coco_evaluate(ann, dets, backend="faster")
    ref, p_ref, _ = coco_evaluate(ann, dets, backend="pycocotools")
    assert 0.05 < ref["AP"] < 0.95                      # a non-trivial case
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], abs=1e-9), k
    assert np.allclose(p_fast, p_ref)


def test_to_coco_results_rescales_and_clips():
    det = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 300.0]]), "scores": torch.tensor([0.5]),
           "labels": torch.tensor([1])}
    meta = {"image_id": 7, "scale": 0.5, "ori_shape": (400, 90)}
    [r] = to_coco_results(det, meta, cat_ids=[3, 9])
    assert r["image_id"] == 7 and r["category_id"] == 9
    assert r["bbox"] == [20.0, 40.0, 70.0, 360.0]      # x2 = 100 clipped to width 90


def test_evaluate_writes_report(synth, tmp_path):
    """Files are named by test setting: --fast (ablation) writes eval_fast.json & co. beside the
    main setting's eval.json and never overwrites it."""
    cfg = rtmdet.load_config("rtmdet-tiny", {"data.root": str(synth), "data.img_size": 128,
                                             "model.head.num_classes": 8})
    model = rtmdet.build_model(cfg)
    main = evaluate(model, cfg, tmp_path, fast=False)
    main_bytes = (tmp_path / "eval.json").read_bytes()
    report = evaluate(model, cfg, tmp_path, fast=True)
    assert (tmp_path / "eval.json").read_bytes() == main_bytes          # untouched by --fast
    assert json.loads(main_bytes)["setting"] == "main" and main["test_settings"]["score_thr"] == 0.001
    saved = json.loads((tmp_path / "eval_fast.json").read_text())
    assert saved["setting"] == "ablation" and saved["test_settings"]["score_thr"] == 0.05
    assert saved["num_images"] == 8 and len(saved["per_class"]) == 8
    assert set(saved["metrics"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"}
    results = json.loads((tmp_path / "results_fast.bbox.json").read_text())
    assert len(results) == report["num_detections"]
    assert (tmp_path / "pr_curve_fast.png").stat().st_size > 0
    assert (tmp_path / "per_class_ap_fast.csv").read_text().startswith("category_id,name,AP")
    assert sorted(saved["files"]) == sorted(str(tmp_path / n) for n in (
        "results_fast.bbox.json", "per_class_ap_fast.csv", "pr_curve_fast.png", "eval_fast.json"))
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{stem}{sfx}{ext}" for sfx in ("", "_fast") for stem, ext in (
            ("eval", ".json"), ("results", ".bbox.json"), ("pr_curve", ".png"),
            ("per_class_ap", ".csv"))}
