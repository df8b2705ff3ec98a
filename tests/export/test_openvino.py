"""OpenVINO CPU inference (issue 18): our ONNX graph compiled by OpenVINO gives the torch
model's raw outputs (fp32 to float rounding, bf16 within its 8-bit mantissa), the same
detections through the shared post-processing, and is reachable from ``bench latency``,
``eval`` and ``predict``; missing OpenVINO or an impossible request is one line."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from rtmdet.bench.latency import benchmark
from rtmdet.bench.runners import Unavailable, openvino_runner
from rtmdet.commands.main import main
from rtmdet.config import load_config
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.export.onnx import export_onnx, flatten_outputs
from rtmdet.export.openvino_session import OpenVinoError, OpenVinoSession
from rtmdet.export.ort_detector import openvino_detector
from rtmdet.models.build import build_model
from rtmdet.models.fuse import fuse_model
from rtmdet.models.precision import DtypeError, check_backend, resolve_dtype
from rtmdet.models.weights import calibrate_bn, save_weights

pytest.importorskip("openvino")
SIZE = 96
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = write_synth_coco(tmp_path_factory.mktemp("synth"), n_train=3, n_val=2, seed=3,
                            size_range=(96, 128), max_objects=4)
    cfg = load_config("rtmdet-tiny", [f"data.root={root}", f"data.img_size={SIZE}",
                                      "model.head.num_classes=8"])
    torch.manual_seed(0)
    model = calibrate_bn(build_model(cfg), size=SIZE).eval()
    onnx = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, onnx, SIZE)
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = [t.numpy() for t in flatten_outputs(model.forward_raw(x))]
    return cfg, model, onnx, x, ref


def test_fp32_matches_torch(setup):
    _, _, onnx, x, ref = setup
    out = OpenVinoSession(onnx, threads=1).run(None, {"images": x.numpy()})
    assert [o.shape for o in out] == [r.shape for r in ref]       # graph-output order kept
    for o, r in zip(out, ref):
        np.testing.assert_allclose(o, r, rtol=1e-3, atol=1e-3)


def test_bf16_where_native_else_refused(setup):
    _, model, onnx, x, ref = setup
    if resolve_dtype("bf16") != "bf16":
        with pytest.raises(OpenVinoError, match="no bf16"):
            OpenVinoSession(onnx, 1, "bf16")
        return
    out = OpenVinoSession(onnx, 1, "bf16").run(None, {"images": x.numpy()})
    # bf16 keeps 8 significant bits and a random-weight net amplifies the rounding layer by
    # layer (~10 % of the output range here), so the yardstick is torch's bf16 autocast, whose
    # accuracy on a trained model is measured (benchmarks/precision_parity.py): OpenVINO's
    # error must be of the same size, not larger.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        auto = [t.float().numpy() for t in flatten_outputs(fuse_model(model).forward_raw(x))]
    for o, a, r in zip(out, auto, ref):
        assert np.abs(o - r).max() <= 1.5 * np.abs(a - r).max()


def test_outputs_are_copies(setup):
    """The request reuses its buffers: a caller keeping outputs must not see them change."""
    _, _, onnx, x, _ = setup
    sess = OpenVinoSession(onnx, 1)
    first = sess.run(None, {"images": x.numpy()})
    kept = [a.copy() for a in first]
    sess.run(None, {"images": np.zeros_like(x.numpy())})
    assert all(np.array_equal(a, b) for a, b in zip(first, kept))


def test_detector_gives_the_torch_detections(setup, tmp_path):
    cfg, model, _, x, _ = setup
    det = openvino_detector(model, cfg, SIZE, "fp32", tmp_path, threads=1)
    assert det.info["engine"] == "openvino" and det.info["dtype"] == "fp32"
    with torch.no_grad():
        want = model.predict(x, score_thr=0.05)[0]
    got = det.predict(torch.cat([x, x]), score_thr=0.05)      # dynamic batch
    assert len(got) == 2
    assert torch.equal(got[0]["labels"], want["labels"])
    torch.testing.assert_close(got[0]["boxes"], want["boxes"], rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(got[0]["scores"], want["scores"], rtol=1e-3, atol=1e-4)


def test_impossible_requests_are_one_line(setup, monkeypatch):
    _, _, onnx, x, _ = setup
    with pytest.raises(OpenVinoError, match="not 'int8'"):
        OpenVinoSession(onnx, 1, "int8")
    check_backend("bf16", "openvino")                  # exists
    with pytest.raises(DtypeError, match="runs on the onnxruntime backend, not openvino"):
        check_backend("int8", "openvino")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    with pytest.raises(Unavailable, match=r"OpenVINO is not installed \(pip install"):
        openvino_runner(onnx, x, 1)


def test_bench_latency_runs_openvino(setup, tmp_path):
    _, model, _, _, _ = setup
    res = benchmark(model, "tiny", backend="openvino", size=64, runs=2, warmup=1, threads=1,
                    work_dir=tmp_path, dtype="bf16")
    assert res["backend"] == "openvino" and res["dtype"] == resolve_dtype("bf16")
    assert res["latency"]["runs"] == 2 and res["openvino"]


def test_eval_and_predict_with_engine_openvino(setup, tmp_path):
    cfg, model, _, _, _ = setup
    ckpt = tmp_path / "w.pt"
    save_weights(ckpt, model, cfg.to_dict())
    assert main(["eval", "--weights", str(ckpt), "--engine", "openvino", "--out",
                 str(tmp_path / "ev"), "--device", "cpu"]) == 0
    rep = json.loads((tmp_path / "ev" / "eval_openvino.json").read_text())
    assert rep["engine"] == "openvino" and rep["dtype"] == "fp32"
    assert not (tmp_path / "ev" / "eval.json").exists()        # the torch file is not touched
    out = tmp_path / "pred"
    assert main(["predict", "--weights", str(ckpt), "--engine", "openvino", "--source",
                 str(cfg.data.root) + "/images/val", "--out", str(out)]) == 0
    assert json.loads((out / "detections.json").read_text())["engine"] == "openvino"


def test_int8_with_openvino_is_refused(setup, tmp_path, capsys):
    cfg, model, _, _, _ = setup
    ckpt = tmp_path / "w.pt"
    save_weights(ckpt, model, cfg.to_dict())
    rc = main(["eval", "--weights", str(ckpt), "--engine", "openvino", "--dtype", "int8",
               "--out", str(tmp_path / "ev")])
    assert rc == 2
    assert capsys.readouterr().err.strip() == ("rtmdet: error: --dtype int8 runs onnxruntime; "
                                               "it does not combine with --engine openvino")
