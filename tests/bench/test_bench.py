"""``rtmdet bench latency``: runs on CPU with torch and onnxruntime and writes valid JSON;
TensorRT falls back with one clear line when it (or a GPU) is absent. No timing assertions."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from rtmdet.bench import latency as bench
from rtmdet.commands import bench as bench_command


def main(argv: list[str]) -> int:
    """``rtmdet bench …`` through this command's own parser (independent of other commands)."""
    import argparse
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    return bench_command.run(parser.parse_args(argv[1:]))

SIZE = 64
HAS_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def _latency(tmp_path, backend: str, *extra: str) -> dict:
    out = tmp_path / f"{backend}.json"
    rc = main(["bench", "latency", "rtmdet-tiny", "--backend", backend, "--size", str(SIZE),
               "--runs", "4", "--warmup", "1", "--threads", "1", "--out", str(out),
               "--work-dir", str(tmp_path / "work"), *extra])
    assert rc == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_latency_cpu_writes_json(tmp_path, backend):
    res = _latency(tmp_path, backend)
    assert (res["backend"], res["device"], res["fp16"]) == (backend, "cpu", False)
    if backend == "torch":  # BN folded and NHWC by default, as the other backends do
        assert res["torch_fused_bn"] is True and res["channels_last"] is True
    assert res["fallback"] == []
    lat = res["latency"]
    assert lat["runs"] == len(lat["all_ms"]) == 4
    assert lat["median_ms"] == pytest.approx(np.median(lat["all_ms"]), rel=1e-3)
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"] <= lat["max_ms"]
    # Complexity from the model counter: exact official parameter count for tiny (SPEC §1),
    # FLOPs scale with the input area (640 → 8.089 G officially, so 64 → ~1/100 of it).
    assert res["params"] == 4_896_168
    assert res["flops"] == pytest.approx(8.089e9 / 100, rel=0.02)
    assert res["threads"] == 1 and res["env"]["torch_threads"] == 1
    assert res["env"]["cpu"] and res["env"]["torch"] == torch.__version__
    assert res["size"] == SIZE and res["batch"] == 1 and res["model"] == "rtmdet-tiny"


@pytest.mark.skipif(HAS_TRT, reason="TensorRT and a GPU are present: fallback not exercised")
def test_tensorrt_absent_falls_back_with_one_line(tmp_path, capsys):
    res = _latency(tmp_path, "tensorrt", "--device", "cuda", "--fp16")
    notes = [l for l in capsys.readouterr().out.splitlines() if l.startswith("note:")]
    assert len(notes) == 1 and "tensorrt" in notes[0] and "unavailable" in notes[0]
    assert res["requested"] == {"backend": "tensorrt", "device": "cuda", "fp16": True,
                                "dtype": "fp32"}
    assert res["backend"] != "tensorrt" and res["device"] == "cpu" and not res["fp16"]
    assert res["backend"] == "onnxruntime"  # the best CPU backend we ship
    assert len(res["fallback"]) == 1


def test_tensorrt_latency(tmp_path):
    if not HAS_TRT:
        pytest.skip("tensorrt is not installed or no CUDA GPU: TensorRT latency not measured")
    res = _latency(tmp_path, "tensorrt", "--device", "cuda", "--fp16")
    assert (res["backend"], res["device"], res["fp16"]) == ("tensorrt", "cuda", True)
    again = _latency(tmp_path, "tensorrt", "--device", "cuda", "--fp16")
    assert again["engine_cached"] and again["engine"] == res["engine"]


def test_summarize_hand_computed():
    s = bench.summarize([4.0, 1.0, 10.0, 2.0, 3.0])
    assert s["median_ms"] == 3.0 and s["min_ms"] == 1.0 and s["max_ms"] == 10.0
    assert s["p90_ms"] == pytest.approx(7.6)  # linear interpolation: 4 + 0.6 · (10 − 4)
    assert s["mean_ms"] == pytest.approx(4.0)


def test_fallback_order_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench._candidates("tensorrt", "cuda", True) == [
        ("tensorrt", "cuda", True), ("onnxruntime", "cpu", False), ("torch", "cpu", False)]
    assert bench._candidates("torch", "cuda", True) == [
        ("torch", "cuda", True), ("torch", "cpu", False), ("onnxruntime", "cpu", False)]


def test_model_hash_tracks_weights():
    from rtmdet.models.build import build_model
    torch.manual_seed(0)
    a = build_model("rtmdet-tiny")
    h = bench.model_hash(a, "64|1")
    assert h == bench.model_hash(a, "64|1") and h != bench.model_hash(a, "320|1")
    with torch.no_grad():
        a.head.rtm_cls[0].bias[0] += 1
    assert bench.model_hash(a, "64|1") != h
