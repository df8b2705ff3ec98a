"""``--dtype`` on ``bench latency``, ``eval`` and ``predict``: the choices, and one-line errors for
a name that does not exist or a precision the chosen backend or model cannot run."""
from __future__ import annotations

import json

import pytest
import torch

from rtmdet.commands.common import parse
from rtmdet.commands.main import build_parser, main
from rtmdet.config import load_config
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.models import precision
from rtmdet.models.build import build_model
from rtmdet.models.weights import calibrate_bn, save_weights


@pytest.mark.parametrize("argv", [
    ["bench", "latency", "rtmdet-tiny"],
    ["eval", "--weights", "w.pt"],
    ["predict", "--weights", "w.pt", "--source", "s", "--out", "o"],
])
def test_dtype_choices(argv, capsys):
    cmd = argv[0]
    assert parse(build_parser(cmd), argv).dtype == "fp32"                 # the default
    for dtype in ("bf16", "int8"):
        args = parse(build_parser(cmd), argv + ["--dtype", dtype])
        assert args.dtype == dtype and args.calib_images == 32
    with pytest.raises(SystemExit) as e:
        parse(build_parser(cmd), argv + ["--dtype", "int4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    # one error line after the usage (argparse quotes the choices or not by Python version)
    assert "error: argument --dtype: invalid choice: 'int4' (choose from" in err[-1]
    assert all(d in err[-1] for d in ("fp32", "bf16", "int8"))
    with pytest.raises(SystemExit):
        parse(build_parser(cmd), argv + ["--dtype", "int8", "--calib-images", "0"])
    assert "argument --calib-images: must be at least 1, got 0" in capsys.readouterr().err


def test_a_precision_the_backend_cannot_run_is_one_line(capsys):
    rc = main(["bench", "latency", "rtmdet-tiny", "--dtype", "bf16", "--backend", "onnxruntime",
               "--size", "64", "--runs", "1", "--warmup", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["rtmdet: error: --dtype bf16 runs on the torch or openvino backend, not "
                               "onnxruntime; use --backend torch"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random-weight checkpoint (8 classes) with its synthetic data: the commands' wiring
    is what is tested here; accuracy needs a trained model (benchmarks/precision_parity.py)."""
    root = write_synth_coco(tmp_path_factory.mktemp("data"), n_train=3, n_val=2, seed=2,
                            size_range=(96, 128), max_objects=4)
    cfg = load_config("rtmdet-tiny", [f"data.root={root}", "data.img_size=96",
                                      "model.head.num_classes=8"])
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "w.pt"
    save_weights(path, calibrate_bn(build_model(cfg), size=96), cfg.to_dict())
    return path, root


def test_eval_bf16_writes_its_own_files(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "_warned", set())
    path, _ = checkpoint
    assert main(["eval", "--weights", str(path), "--dtype", "bf16", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    rep = json.loads((tmp_path / "eval_bf16.json").read_text())
    assert rep["dtype"] == precision.resolve_dtype("bf16")      # bf16 here; fp32 without it
    assert not (tmp_path / "eval.json").exists()                # the fp32 file is not touched


def test_predict_int8(checkpoint, tmp_path):
    path, root = checkpoint
    out = tmp_path / "preds"
    assert main(["predict", "--weights", str(path), "--source", str(root / "images" / "val"),
                 "--out", str(out), "--dtype", "int8", "--calib-images", "2",
                 "--score-thr", "0.0", "--device", "cpu"]) == 0
    rec = json.loads((out / "detections.json").read_text())
    assert rec["dtype"] == "int8" and len(rec["images"]) == 2
    assert all(len(i["detections"]) > 0 for i in rec["images"])
    assert list((out / "onnx").glob("*-int8-*.onnx"))


def test_reduced_precision_metrics_sit_beside_fp32_in_mlflow():
    from rtmdet.engine.tracking import bench_metrics
    res = {"latency": {"median_ms": 10.0, "p90_ms": 12.0}, "params": 5, "flops": 7}
    assert set(bench_metrics(res)) == {"bench/latency_ms", "bench/latency_p90_ms",
                                       "bench/params", "bench/flops"}
    assert bench_metrics({**res, "dtype": "bf16"})["bench_bf16/latency_ms"] == 10.0
    assert not any(k.startswith("bench/") for k in bench_metrics({**res, "dtype": "int8"}))
    ov = bench_metrics({**res, "dtype": "bf16", "backend": "openvino"})
    assert ov["bench_openvino_bf16/latency_ms"] == 10.0 and "bench_bf16/latency_ms" not in ov


def test_check_precision_refuses_what_a_model_type_cannot_run():
    from rtmdet.commands.common import check_precision
    rotated, det = load_config("rtmdet-r-tiny"), load_config("rtmdet-tiny")
    check_precision(rotated, "fp32")                           # fp32 torch: every model type
    for dtype, engine in (("bf16", "torch"), ("fp32", "openvino")):
        with pytest.raises(precision.DtypeError, match="rotated models run fp32 in torch only"):
            check_precision(rotated, dtype, engine)
    check_precision(det, "bf16", "openvino")
    with pytest.raises(precision.DtypeError, match="does not combine with --engine openvino"):
        check_precision(det, "int8", "openvino")
