"""ONNX export: onnx.checker, onnxruntime vs torch parity and identical detections.

Random weights are made numerically realistic (BatchNorm statistics calibrated on random input,
prediction convs re-initialised with a larger spread) so that scores spread over (0, 1), boxes
have real extents and NMS has work to do; with the stock init every output equals its bias
and parity would hold trivially.
"""
from __future__ import annotations

import onnx
import pytest
import torch

from rtmdet.models.build import build_model
from rtmdet.export.onnx import DecodedOutputs, export_onnx
from rtmdet.models.postprocess import finish_detections
from rtmdet.models.weights import calibrate_bn, load_model
from rtmdet.export.parity import check_parity, same_detections

SIZE = 320


# onnxruntime/fused-model comparisons run single-threaded (conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def _model(overrides: list[str] | None = None, preset: str = "rtmdet-tiny"):
    """BN-calibrated random model whose head gives a realistic score/box spread."""
    torch.manual_seed(0)
    model = calibrate_bn(build_model(preset, overrides))
    with torch.no_grad():
        for conv in model.head.rtm_cls:
            torch.nn.init.normal_(conv.weight, std=0.005)
            torch.nn.init.constant_(conv.bias, -1.0)
        for conv in model.head.rtm_reg:
            torch.nn.init.normal_(conv.weight, std=0.02)
            torch.nn.init.constant_(conv.bias, 3.0)
    return model


@pytest.mark.parametrize("overrides", [None, ["model.backbone.kernel_size=7",
                                              "model.head.share=none"]])
def test_raw_export_parity(tmp_path, overrides):
    model = _model(overrides)
    path = tmp_path / "m.onnx"
    meta = export_onnx(model, path, size=SIZE)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [o.name for o in proto.graph.output] == meta["outputs"] == [
        "cls_score_s8", "cls_score_s16", "cls_score_s32",
        "bbox_pred_s8", "bbox_pred_s16", "bbox_pred_s32"]
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    rep = check_parity(model, path, x, score_thr=0.3, threads=1)
    assert rep["ok"], rep
    assert all(v["max_abs_diff"] <= v["tol"] for v in rep["outputs"].values())
    # Non-trivial: the model produces a full set of detections on both sides.
    assert rep["detections"]["torch"] == rep["detections"]["onnxruntime"] == [300]


def test_postprocess_export_matches_predict(tmp_path):
    """Dynamic-batch graph with in-graph decode/top-k, finished by NMS outside, gives
    the same detections as ``model.predict`` for every image of a batch of 2."""
    model = _model()
    path = tmp_path / "post.onnx"
    meta = export_onnx(model, path, size=SIZE, dynamic_batch=True, with_postprocess=True,
                       topk=1000)
    assert meta["outputs"] == ["boxes", "scores", "labels"]
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    rep = check_parity(model, path, x, with_postprocess=True, score_thr=0.3, topk=1000,
                       threads=1)
    assert rep["ok"], rep
    assert rep["detections"]["onnxruntime"] == [300, 300]
    # The torch wrapper itself equals predict (decode logic, independent of onnxruntime); the
    # plain model, since the BN-folded fast path rounds differently at the 1e-6 level.
    want = model.predict(x, score_thr=0.3, nms_pre=1000, fast=False)
    with torch.no_grad():
        got = finish_detections(*DecodedOutputs(model, SIZE, 1000)(x), score_thr=0.3)
    assert same_detections(want, got, rel=1e-6)


def test_same_detections_detects_differences():
    det = {"boxes": torch.tensor([[0., 0., 100., 100.]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([3])}
    moved = dict(det, boxes=det["boxes"] + torch.tensor([0., 0., 0., 0.5]))
    relabelled = dict(det, labels=torch.tensor([4]))
    two = {k: torch.cat([v, v * 0.5 if k != "labels" else v]) for k, v in det.items()}
    swapped = {k: v.flip(0) for k, v in two.items()}
    assert same_detections([det], [dict(det)])
    assert same_detections([two], [swapped])  # order may differ, content may not
    assert not same_detections([two], [dict(two, scores=two["scores"] * 1.01)])
    assert not same_detections([det], [moved])
    assert not same_detections([det], [relabelled])
    assert not same_detections([det], [])


def test_postprocess_rejects_non_detection_models(tmp_path):
    with pytest.raises(ValueError, match="detection models only"):
        export_onnx(_model(), tmp_path / "x.onnx", size=64, with_postprocess=True,
                    model_type="ins")


@pytest.mark.parametrize("preset", ["rtmdet-ins-tiny", "rtmdet-r-tiny"])
def test_ins_and_rotated_export_parity(tmp_path, preset):
    """Raw outputs of RTMDet-Ins (kernels, prototypes) and RTMDet-R (angles) match, and so do
    their detections through their own post-processing (boxes resp. rotated boxes)."""
    model = _model(preset=preset)
    model_type = "ins" if "ins" in preset else "rotated"
    path = tmp_path / "m.onnx"
    meta = export_onnx(model, path, size=SIZE, model_type=model_type)
    extra = (["kernel_pred_s8", "kernel_pred_s16", "kernel_pred_s32", "mask_feat"]
             if model_type == "ins" else ["angle_pred_s8", "angle_pred_s16", "angle_pred_s32"])
    assert meta["outputs"][6:] == extra
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    rep = check_parity(model, path, x, model_type=model_type, score_thr=0.3, topk=1000,
                       max_per_img=100, iou_thr=0.6, threads=1)
    assert rep["ok"], rep
    assert rep["detections"]["torch"] == rep["detections"]["onnxruntime"]
    assert rep["detections"]["torch"][0] > 10


def test_load_model_with_weights(tmp_path):
    """--weights: a checkpoint loads into the matching config (the ablation variant), and a
    mismatching config is one clear error instead of a state-dict traceback."""
    from rtmdet.config import load_config
    from rtmdet.models.weights import WeightMismatchError, save_weights

    over = ["model.backbone.channel_attention=false"]
    cfg = load_config("rtmdet-tiny", over)
    src = _model(over)
    save_weights(tmp_path / "w.pt", src, cfg.to_dict())
    model, _ = load_model("rtmdet-tiny", str(tmp_path / "w.pt"), over)
    for (k, a), b in zip(src.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(WeightMismatchError, match="do not fit the model of rtmdet-tiny"):
        load_model("rtmdet-tiny", str(tmp_path / "w.pt"))
