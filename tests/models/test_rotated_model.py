"""RTMDet-R: sizes, rotated decode, test path and initialisation from a detection checkpoint."""
from __future__ import annotations

import math

import pytest
import torch

import rtmdet
from tests.helpers.fixtures import load_fixture
from rtmdet.models.postprocess import rotated_postprocess
from rtmdet.models.rotated_detector import RotatedRTMDet
from rtmdet.models.weights import init_from_detector
from rtmdet.geometry.rotated import distance2rbox, regularize_le90
from rtmdet.geometry.rotated_iou import rbox_iou

F64 = torch.float64


@pytest.mark.parametrize("size,params", [("tiny", 4_877_544), ("s", 8_862_156),
                                         ("m", 24_672_132), ("l", 52_266_460)])
def test_official_param_counts(size, params):
    model = rtmdet.build_model(f"rtmdet-r-{size}")
    assert isinstance(model, RotatedRTMDet) and model.num_classes == 15
    assert sum(p.numel() for p in model.parameters()) == params   # unique tensors


def test_preset_settings():
    cfg = rtmdet.load_config("rtmdet-r-s")
    assert cfg.model.type == "rotated" and cfg.model.head.num_classes == 15
    assert not cfg.model.head.exp_on_reg and rtmdet.load_config("rtmdet-r-m").model.head.exp_on_reg
    assert (cfg.eval.score_thr, cfg.eval.nms_pre, cfg.eval.iou_thr, cfg.eval.max_per_img) == \
        (0.05, 2000, 0.1, 2000)


def test_distance2rbox_hand_case():
    # Point (16, 8); l=2, t=1, r=6, b=3; θ = π/2 → w 8, h 4, centre offset R(π/2)·(2, 1) = (−1, 2).
    box = distance2rbox(torch.tensor([[16.0, 8.0]], dtype=F64),
                        torch.tensor([[2.0, 1.0, 6.0, 3.0]], dtype=F64),
                        torch.tensor([[math.pi / 2]], dtype=F64))
    assert torch.allclose(box, torch.tensor([[15.0, 10.0, 8.0, 4.0, -math.pi / 2]], dtype=F64))


def test_distance2rbox_point_distances_in_box_frame():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 2, generator=g, dtype=F64) * 100
    dist = torch.rand(500, 4, generator=g, dtype=F64) * 30 + 1
    ang = (torch.rand(500, generator=g, dtype=F64) - 0.5) * 8
    box = distance2rbox(pts, dist, ang)
    assert (box[:, 4] >= -math.pi / 2).all() and (box[:, 4] < math.pi / 2).all()
    # In the un-wrapped frame (θ = ang) the point sits l from the left side, t from the top.
    dx, dy = pts[:, 0] - box[:, 0], pts[:, 1] - box[:, 1]
    u = dx * torch.cos(ang) + dy * torch.sin(ang)
    v = -dx * torch.sin(ang) + dy * torch.cos(ang)
    assert torch.allclose(u + box[:, 2] / 2, dist[:, 0]) and torch.allclose(v + box[:, 3] / 2, dist[:, 1])
    unwrapped = box.clone()
    unwrapped[:, 4] = ang
    assert torch.allclose(rbox_iou(box, regularize_le90(unwrapped), aligned=True),
                          torch.ones(500, dtype=F64))


def test_head_initialisation():
    head = rtmdet.build_model("rtmdet-r-s").head
    w = torch.cat([c.weight.flatten() for c in head.rtm_ang])
    assert abs(w.std().item() - 0.01) < 0.001 and all((c.bias == 0).all() for c in head.rtm_ang)
    assert all(torch.allclose(c.bias, torch.full((15,), -4.59512)) for c in head.rtm_cls)


def _raw_maps():
    """One image, one level (stride 8, 2×2 cells), 2 classes; hand-chosen outputs."""
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    cls = torch.full((1, 2, 2, 2), -10.0, dtype=F64)
    cls[0, 0, 0, 0], cls[0, 0, 0, 1], cls[0, 1, 1, 0], cls[0, 0, 1, 1] = \
        logit(0.9), logit(0.8), logit(0.7), logit(0.04)
    dist = torch.full((1, 4, 2, 2), 5.0, dtype=F64)
    dist[0, :, 0, 1] = torch.tensor([13.0, 5, 3, 5])      # prior (8, 0): same box as prior (0, 0)
    ang = torch.zeros((1, 1, 2, 2), dtype=F64)
    ang[0, 0, 1, 0] = 0.4
    return [cls], [dist], [ang]


def test_rotated_postprocess_hand_case():
    cls, dist, ang = _raw_maps()
    r = rotated_postprocess(cls, dist, ang, (8,), score_thr=0.05, iou_thr=0.1)[0]
    # (0,0) class 0 keeps; (8,0) decodes to the same box → suppressed; (0,8) class 1 stays;
    # (8,8) is under the score threshold.
    assert r["labels"].tolist() == [0, 1]
    assert torch.allclose(r["scores"], torch.tensor([0.9, 0.7], dtype=F64))
    assert torch.allclose(r["rboxes"], torch.tensor([[0.0, 0, 10, 10, 0], [0, 8, 10, 10, 0.4]],
                                                    dtype=F64))
    r2 = rotated_postprocess(cls, dist, ang, (8,), score_thr=0.05, iou_thr=0.1, nms_pre=1)[0]
    assert r2["scores"].tolist() == pytest.approx([0.9])
    dist[0][0, 2, 0, 0] = -5.0                               # w = 0 → dropped
    r3 = rotated_postprocess(cls, dist, ang, (8,), score_thr=0.05, iou_thr=0.1)[0]
    assert r3["scores"].tolist() == pytest.approx([0.8, 0.7])


def test_predict_matches_raw_outputs():
    model = rtmdet.build_model("rtmdet-r-tiny")
    for conv in model.head.rtm_cls:                          # make some boxes pass 0.05
        torch.nn.init.constant_(conv.bias, -2.0)
    x = torch.randn(2, 3, 96, 64, generator=torch.Generator().manual_seed(1))
    model.train()
    dets = model.predict(x)
    assert model.training and len(dets) == 2
    model.eval()
    with torch.no_grad():
        cls, dist, ang = model.forward_raw(x)
    assert [a.shape for a in ang] == [(2, 1, 12, 8), (2, 1, 6, 4), (2, 1, 3, 2)]
    ref = rotated_postprocess(cls, dist, ang, model.strides)
    for d, e in zip(dets, ref):
        assert d["rboxes"].shape[1] == 5 and len(d["scores"]) > 0
        assert torch.equal(d["rboxes"], e["rboxes"]) and torch.equal(d["labels"], e["labels"])
        assert (d["scores"] > 0.05).all() and (d["scores"].diff() <= 0).all()


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("rtmdet_tiny.pt")


def test_init_from_official_detection_checkpoint(fixture):
    model = rtmdet.build_model("rtmdet-r-tiny")
    fresh_ang = [c.weight.clone() for c in model.head.rtm_ang]
    report = init_from_detector(model, fixture)
    assert all(k.startswith(("head.rtm_cls.", "head.rtm_ang.")) for k in report["new"])
    assert len(report["new"]) == 12                          # 3 levels × (cls, ang) × (w, b)
    assert sorted(report["unused"]) == sorted(k for k in fixture["state_dict"]
                                              if k.startswith("bbox_head.rtm_cls."))
    assert all(torch.equal(a, c.weight) for a, c in zip(fresh_ang, model.head.rtm_ang))
    # The shared parts reproduce the official detector's distances exactly (float64).
    model = model.double().eval()
    with torch.no_grad():
        cls, dist, ang = model.forward_raw(fixture["input"][:1].double())   # eval BN: per image
    for ours, ref in zip(dist, fixture["raw64"]["bbox_preds"]):
        assert (ours - ref[:1]).abs().max() <= 1e-6
    assert [c.shape[1] for c in cls] == [15, 15, 15]


def test_init_from_our_detection_checkpoint(fixture):
    det = rtmdet.build_model("rtmdet-tiny")
    rtmdet.load_mmdet_weights(det, fixture["state_dict"])
    model = rtmdet.build_model("rtmdet-r-tiny")
    report = init_from_detector(model, {"state_dict": det.state_dict()})
    assert len(report["new"]) == 12 and len(report["unused"]) == 6
    assert torch.equal(model.head.rtm_reg[2].weight, det.head.rtm_reg[2].weight)
    # Same class count: the classifier transfers too.
    model80 = rtmdet.build_model("rtmdet-r-tiny", ["model.head.num_classes=80"])
    report80 = init_from_detector(model80, det.state_dict())
    assert all(k.startswith("head.rtm_ang.") for k in report80["new"]) and not report80["unused"]
    with pytest.raises(ValueError, match="same size"):
        init_from_detector(rtmdet.build_model("rtmdet-r-s"), det.state_dict())


def test_official_rotated_weights_load_through_load_mmdet_weights(fixture):
    # An mmrotate-style RTMDet-R state dict: the detector's keys, 15 classes, rtm_ang per level.
    sd = {k: v for k, v in fixture["state_dict"].items() if not k.startswith("bbox_head.rtm_cls.")}
    g = torch.Generator().manual_seed(3)
    for lvl in range(3):
        sd[f"bbox_head.rtm_cls.{lvl}.weight"] = torch.randn(15, 96, 1, 1, generator=g)
        sd[f"bbox_head.rtm_cls.{lvl}.bias"] = torch.randn(15, generator=g)
        sd[f"bbox_head.rtm_ang.{lvl}.weight"] = torch.randn(1, 96, 1, 1, generator=g)
        sd[f"bbox_head.rtm_ang.{lvl}.bias"] = torch.randn(1, generator=g)
    model = rtmdet.build_model("rtmdet-r-tiny")
    rtmdet.load_mmdet_weights(model, sd)
    assert torch.equal(model.head.rtm_ang[1].weight, sd["bbox_head.rtm_ang.1.weight"])
    assert torch.equal(model.head.rtm_cls[2].bias, sd["bbox_head.rtm_cls.2.bias"])
