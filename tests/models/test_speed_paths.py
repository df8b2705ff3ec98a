"""The predict fast path (cached BN-folded, channels-last copy): same detections as the plain
model and as the official fixture, on by default only where intended, and never stale after
the weights change (optimizer steps, BN running statistics, load_state_dict)."""
from __future__ import annotations

import pytest
import torch

import rtmdet
from tests.helpers.fixtures import load_fixture
from rtmdet.models.fuse import _FAST_CACHE, clear_fast_cache, count_unfused_bn


# onnxruntime/fused-model comparisons run single-threaded (conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("rtmdet_tiny.pt")


def _model(fixture):
    model = rtmdet.build_model("rtmdet-tiny")
    rtmdet.load_mmdet_weights(model, fixture["state_dict"])
    return model.eval()


def _predict(model, fixture, x=None, **kw):
    cfg = fixture["meta"]["test_cfg"]
    return model.predict(fixture["input"] if x is None else x, score_thr=cfg["score_thr"],
                         iou_thr=cfg["nms"]["iou_threshold"], max_per_img=cfg["max_per_img"],
                         nms_pre=cfg["nms_pre"], use_torchvision=False, **kw)


def _assert_same(got, want, box_tol=0.1, score_tol=1e-3, key="boxes"):
    """Same detections up to float rounding, matched one-to-one in any order: two scores tied
    within ~1e-5 may swap places in the ranking when the arithmetic changes (folded BN)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w_boxes = w[key] if key in w else w["bboxes"]
        assert len(g[key]) == len(w_boxes) > 0
        close = ((g["labels"][:, None] == w["labels"][None])
                 & ((g[key][:, None] - w_boxes[None]).abs().amax(-1) <= box_tol)
                 & ((g["scores"][:, None] - w["scores"][None]).abs() <= score_tol))
        used: set[int] = set()
        for i in range(len(close)):
            free = [j for j in close[i].nonzero().flatten().tolist() if j not in used]
            assert free, f"detection {i} has no counterpart"
            used.add(min(free, key=lambda j: abs(j - i)))


def test_fast_predict_gives_official_detections(fixture):
    model = _model(fixture)
    _assert_same(_predict(model, fixture, fast=True), fixture["dets"])
    fused = _FAST_CACHE[model][1]
    assert count_unfused_bn(fused) == 0 and count_unfused_bn(model) > 0
    assert fused.backbone.stem[0].conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fast_and_plain_predict_agree(fixture):
    model = _model(fixture)
    fast, plain = _predict(model, fixture, fast=True), _predict(model, fixture, fast=False)
    _assert_same(fast, plain, box_tol=1e-2, score_tol=1e-4)  # float32 rounding only


def test_default_is_fast_only_for_eval_float32_cpu(fixture):
    model = _model(fixture)
    clear_fast_cache()
    _predict(model.train(), fixture)
    assert model not in _FAST_CACHE and model.training  # mode restored, plain path
    _predict(model.eval(), fixture)
    assert model in _FAST_CACHE
    model64 = _model(fixture).double()
    _predict(model64, fixture, x=fixture["input"].double())
    assert model64 not in _FAST_CACHE


def test_cache_reused_until_weights_change(fixture):
    model = _model(fixture)
    before = _predict(model, fixture)
    fused = _FAST_CACHE[model][1]
    _predict(model, fixture)
    assert _FAST_CACHE[model][1] is fused  # no re-fold when nothing changed

    # A training step changes parameters (AdamW) and BN running statistics in place.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cls_scores, bbox_preds = model.forward_raw(fixture["input"])
    loss = sum(c.sigmoid().mean() for c in cls_scores) + sum(b.mean() for b in bbox_preds) * 1e-3
    loss.backward()
    opt.step()
    model.eval()

    after_fast = _predict(model, fixture)
    assert _FAST_CACHE[model][1] is not fused
    after_plain = _predict(model, fixture, fast=False)
    _assert_same(after_fast, after_plain, box_tol=1e-2, score_tol=1e-4)
    stale = [b["scores"][:5] for b in before]
    assert any(len(a["scores"]) != len(b["scores"]) or not torch.allclose(a["scores"][:5], s)
               for a, b, s in zip(after_fast, before, stale))  # the step did change outputs


def test_load_state_dict_invalidates(fixture):
    model = _model(fixture)
    before = _predict(model, fixture)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.head.rtm_cls[0].bias.fill_(-20.0)  # level-0 scores ~0: detections change
    changed_fast, changed_plain = _predict(model, fixture), _predict(model, fixture, fast=False)
    _assert_same(changed_fast, changed_plain, box_tol=1e-2, score_tol=1e-4)
    model.load_state_dict(state)
    _assert_same(_predict(model, fixture), before, box_tol=1e-4, score_tol=1e-6)


def test_rotated_fast_path_matches_plain(fixture):
    """RTMDet-R shares the fast path (``raw_for_inference``): same raw outputs and rotated
    detections. Official tiny detection weights (angle conv fresh) keep the boxes realistic."""
    from rtmdet.models.weights import init_from_detector
    torch.manual_seed(0)
    model = rtmdet.build_model("rtmdet-r-tiny", overrides=["model.head.num_classes=80"])
    init_from_detector(model, fixture["state_dict"])
    model.eval()
    x = fixture["input"][:1]
    fast = model.predict(x, score_thr=0.05, fast=True)
    plain = model.predict(x, score_thr=0.05, fast=False)
    assert model in _FAST_CACHE and len(plain[0]["scores"]) > 10
    for a, b in zip(*(model.raw_for_inference(x, fast=f) for f in (True, False))):
        for ta, tb in zip(a, b):                     # every level of cls, box and angle
            assert (ta - tb).abs().max() <= 1e-3 * max(1.0, tb.abs().max().item())
    _assert_same(fast, plain, box_tol=1e-2, score_tol=1e-3, key="rboxes")
