"""`rtmdet convert mmdet` then `rtmdet predict` on real image files."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import rtmdet
from rtmdet.commands.main import main
from rtmdet.commands.predict import predict_image
from tests.helpers.fixtures import load_fixture


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    fx = load_fixture("rtmdet_tiny.pt")
    d = tmp_path_factory.mktemp("ckpt")
    torch.save({"state_dict": fx["state_dict"], "meta": {"note": "official layout"}}, d / "official.pth")
    assert main(["convert", "mmdet", str(d / "official.pth"), str(d / "ours.pt"),
                 "--model", "rtmdet-tiny"]) == 0
    return d / "ours.pt", fx


def test_converted_checkpoint_reproduces_official_raw_outputs(converted):
    path, fx = converted
    model, cfg = rtmdet.load_weights(path)
    assert cfg.name == "rtmdet-tiny"
    with torch.no_grad():
        cls_scores, _ = model.double().eval().forward_raw(fx["input"].double())
    assert max((a - b).abs().max().item() for a, b in zip(cls_scores, fx["raw64"]["cls_scores"])) <= 1e-6


def test_convert_with_wrong_model_fails_clearly(converted, tmp_path, capsys):
    path, fx = converted
    torch.save(fx["state_dict"], tmp_path / "sd.pth")
    assert main(["convert", "mmdet", str(tmp_path / "sd.pth"), str(tmp_path / "o.pt"),
                 "--model", "rtmdet-s"]) == 2
    err = capsys.readouterr().err
    assert "problem(s) loading official weights" in err and "shape mismatch" in err
    assert not (tmp_path / "o.pt").exists()


def test_predict_writes_drawn_images_and_json(converted, tmp_path):
    path, _ = converted
    src = tmp_path / "images"
    src.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for i, (h, w) in enumerate([(240, 320), (300, 200)]):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.rectangle(img, (20, 30), (120, 150), (0, 200, 0), -1)
        cv2.imwrite(str(src / f"img{i}.png"), img)
        images[f"img{i}.png"] = img
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["predict", "--weights", str(path), "--source", str(src), "--out", str(out),
                 "--score-thr", "0.05", "--size", "320"]) == 0
    report = json.loads((out / "detections.json").read_text())
    assert report["skipped"] == 1 and len(report["images"]) == 2
    model, _ = rtmdet.load_weights(path)
    model.eval()
    total = 0
    for entry in report["images"]:
        name = entry["file"].split("/")[-1]
        img = images[name]
        assert (entry["height"], entry["width"]) == img.shape[:2]
        direct = predict_image(model, img, 320, 0.05, 0.65, 300, None)
        assert [d["label"] for d in entry["detections"]] == [d["label"] for d in direct]
        for d in entry["detections"]:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 <= x2 <= img.shape[1] and 0 <= y1 <= y2 <= img.shape[0]
        total += len(entry["detections"])
        drawn = cv2.imread(str(out / name))
        assert drawn.shape == img.shape
        assert (drawn != img).any() == bool(entry["detections"])
    assert total > 0


def test_predict_missing_source(converted, tmp_path, capsys):
    path, _ = converted
    assert main(["predict", "--weights", str(path), "--source", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
