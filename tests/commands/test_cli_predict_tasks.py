"""`rtmdet predict` for every task, on untrained tiny models with a low score threshold (random
heads score ≈ 0.01): RTMDet-Ins writes RLE masks and draws them, RTMDet-R writes (cx, cy, w, h,
angle) plus the matching polygon; class names come from the checkpoint or the official set."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from rtmdet.commands import convert as convert_command
from rtmdet.commands.main import main
from rtmdet.commands.predict_draw import draw_detections
from rtmdet.evaluation.segm import encode_masks
from rtmdet.config import load_config
from rtmdet.data.class_names import COCO_CLASSES, official_class_names
from rtmdet.data.dota import DOTA_CLASSES
from rtmdet.models.build import build_model
from rtmdet.models.weights import save_weights


def _checkpoint(tmp_path, preset, **over):
    cfg = load_config(preset, {"model.backbone.widen_factor": 0.125, **over})
    torch.manual_seed(0)
    return save_weights(tmp_path / f"{preset}.pt", build_model(cfg).eval(), cfg.to_dict())


def _images(folder, n=2):
    folder.mkdir()
    rng = np.random.default_rng(0)
    out = {}
    for i, (h, w) in enumerate([(72, 96), (90, 60)][:n]):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"im{i}.png"), img)
        out[f"im{i}.png"] = img
    return out


def _predict(tmp_path, ckpt, name):
    images = _images(tmp_path / f"src_{name}", n=1)
    out = tmp_path / f"out_{name}"
    assert main(["predict", "--weights", str(ckpt), "--source", str(tmp_path / f"src_{name}"),
                 "--out", str(out), "--score-thr", "0.001", "--size", "64", "--device", "cpu",
                 "eval.max_per_img=4"]) == 0
    report = json.loads((out / "detections.json").read_text())
    return images, out, report


def test_ins_predict_writes_rle_masks_and_draws_them(tmp_path):
    images, out, report = _predict(tmp_path, _checkpoint(tmp_path, "rtmdet-ins-tiny"), "ins")
    assert report["task"] == "ins" and report["classes"] == list(COCO_CLASSES)
    for entry in report["images"]:
        img = images[entry["file"].split("/")[-1]]
        assert 0 < len(entry["detections"]) <= 4                   # eval.max_per_img override
        for d in entry["detections"]:
            m = mask_utils.decode({"size": d["mask"]["size"], "counts": d["mask"]["counts"].encode()})
            assert m.shape == img.shape[:2] and d["class_name"] == COCO_CLASSES[d["label"]]
        drawn = cv2.imread(str(out / entry["file"].split("/")[-1]))
        assert drawn.shape == img.shape and (drawn != img).any()


def test_masks_are_drawn_inside_and_only_inside():
    img = np.zeros((40, 50, 3), np.uint8)
    m = np.zeros((40, 50), bool)
    m[10:20, 5:15] = True
    [rle] = encode_masks(m[None])
    det = {"box": [30, 30, 31, 31], "score": 0.9, "label": 2, "class_name": "c",
           "mask": {"size": rle["size"], "counts": rle["counts"]}}
    drawn = draw_detections(img, [det])
    assert (drawn[12:18, 7:13] > 0).all()                          # filled
    assert not drawn[:8, :].any() and not drawn[22:29, :25].any()  # nothing outside


def test_rotated_predict_writes_rboxes_and_polygons(tmp_path):
    images, out, report = _predict(tmp_path, _checkpoint(tmp_path, "rtmdet-r-tiny"), "rot")
    assert report["task"] == "rotated" and report["classes"] == list(DOTA_CLASSES)
    dets = [d for e in report["images"] for d in e["detections"]]
    assert dets
    for d in dets:
        cx, cy, w, h, angle = d["rbox"]
        poly = np.array(d["polygon"])
        assert poly.shape == (4, 2) and -math.pi <= angle <= math.pi
        assert np.allclose(poly.mean(0), [cx, cy], atol=0.02)
        sides = np.linalg.norm(np.roll(poly, -1, 0) - poly, axis=1)
        assert np.allclose(sorted(sides[:2]), sorted([w, h]), atol=0.05)
    entry = report["images"][0]
    drawn = cv2.imread(str(out / entry["file"].split("/")[-1]))
    assert (drawn != images[entry["file"].split("/")[-1]]).any() == bool(entry["detections"])


def test_class_names_for_official_weights(monkeypatch, tmp_path, capsys):
    assert official_class_names("det", 80)[0] == "person" and len(COCO_CLASSES) == 80
    assert official_class_names("rotated", 15) == list(DOTA_CLASSES)
    assert official_class_names("det", 8) is None
    seen = {}
    monkeypatch.setattr(convert_command, "convert_mmdet_file",
                        lambda src, dst, model, unsafe, classes: seen.setdefault("c", classes) and dst)
    assert main(["convert", "mmdet", "a.pth", str(tmp_path / "b.pt"), "--model", "rtmdet-s"]) == 0
    assert seen["c"] == list(COCO_CLASSES) and "80 class names" in capsys.readouterr().out
