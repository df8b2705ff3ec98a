"""Equivalence with the official implementation on its reference tensors (fixtures/README.md)."""
from __future__ import annotations

import pytest
import torch

import rtmdet
from tests.helpers.fixtures import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("rtmdet_tiny.pt")


@pytest.fixture(scope="module")
def model64(fixture):
    model = rtmdet.build_model("rtmdet-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    return model.double().eval()


def _max_diff(ours, ref) -> float:
    return max((a.double() - b.double()).abs().max().item() for a, b in zip(ours, ref))


def test_float64_backbone_neck_raw_within_1e6(fixture, model64):
    x = fixture["input"].double()
    with torch.no_grad():
        feats = model64.neck(model64.backbone(x))
        cls_scores, bbox_preds = model64.forward_raw(x)
    assert _max_diff(feats, fixture["neck_feats64"]) <= 1e-6
    ref = fixture["raw64"]
    assert len(cls_scores) == len(ref["cls_scores"]) == 3
    for ours, theirs in ((cls_scores, ref["cls_scores"]), (bbox_preds, ref["bbox_preds"])):
        assert [o.shape for o in ours] == [t.shape for t in theirs]
        assert _max_diff(ours, theirs) <= 1e-6


def test_float32_backbone_close_to_official_float32(fixture):
    model = rtmdet.build_model("rtmdet-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    with torch.no_grad():
        feats = model.eval().backbone(fixture["input"])
    # float32 rounding only (official drifts ~1e-3 from itself); a wrong layer is O(1) off.
    assert _max_diff(feats, fixture["backbone_feats"]) < 1e-3


def test_float32_predict_gives_official_detections(fixture):
    model = rtmdet.build_model("rtmdet-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    cfg = fixture["meta"]["test_cfg"]
    dets = model.predict(fixture["input"], score_thr=cfg["score_thr"],
                         iou_thr=cfg["nms"]["iou_threshold"], max_per_img=cfg["max_per_img"],
                         nms_pre=cfg["nms_pre"], use_torchvision=False)
    assert len(dets) == len(fixture["dets"]) == 2
    for ours, ref in zip(dets, fixture["dets"]):
        assert len(ours["boxes"]) == len(ref["bboxes"]) > 0
        assert torch.equal(ours["labels"], ref["labels"])
        assert (ours["boxes"] - ref["bboxes"]).abs().max() <= 0.1
        assert (ours["scores"] - ref["scores"]).abs().max() <= 1e-3


def test_shared_head_conv_must_be_identical_across_levels(fixture):
    sd = dict(fixture["state_dict"])
    key = "bbox_head.cls_convs.1.0.conv.weight"
    sd[key] = sd[key] + 1.0
    with pytest.raises(rtmdet.models.weights.WeightMismatchError, match="shares that tensor"):
        rtmdet.load_mmdet_weights(rtmdet.build_model("rtmdet-tiny"), sd)


def test_wrong_size_lists_shape_mismatches(fixture):
    with pytest.raises(rtmdet.models.weights.WeightMismatchError, match="shape mismatch"):
        rtmdet.load_mmdet_weights(rtmdet.build_model("rtmdet-s"), fixture["state_dict"])


def test_missing_and_unexpected_keys_are_listed(fixture):
    sd = dict(fixture["state_dict"])
    sd.pop("neck.out_convs.0.bn.running_var")
    sd["bbox_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(rtmdet.models.weights.WeightMismatchError) as e:
        rtmdet.load_mmdet_weights(rtmdet.build_model("rtmdet-tiny"), sd)
    assert "missing in official weights: neck.out_convs.0.bn.running_var" in str(e.value)
    assert "unexpected official key bbox_head.extra.weight" in str(e.value)
