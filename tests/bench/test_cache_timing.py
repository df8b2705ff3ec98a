"""The cache loading-time table: rendering from a hand-made timing JSON (paper values from the
CSV, speed-ups computed right, listed in the index), and the measurement on a tiny synthetic set
(loads counted, no timing assertions)."""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import pytest
import torch

from rtmdet.pipeline.report import write_index
from rtmdet.pipeline.report_timing import TIMING_TABLES, write_timing_table

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "paper" / TIMING_TABLES["cache_loading_time"]


def _run(samples: int, mosaic_ms: float, mixup_ms: float, mosaic_load_ms: float,
         mixup_load_ms: float, mosaic_loads: int, mixup_loads: int, rate: float) -> dict:
    return {"samples_per_s": rate, "mosaic_ms": mosaic_ms, "mixup_ms": mixup_ms, "rest_ms": 5.0,
            "image_dtypes": ["torch.uint8", "uint8"], "samples": samples,
            "mosaic_calls": samples, "mixup_calls": samples, "mosaic_loads": mosaic_loads,
            "mixup_loads": mixup_loads, "total_loads": samples + mosaic_loads + mixup_loads,
            "mosaic_load_ms": mosaic_load_ms, "mixup_load_ms": mixup_load_ms}


TIMING = {"preset": "rtmdet-l", "size": 640, "image_shape_hw": [480, 640], "images": 60,
          "jpeg_quality": 92, "n": 50, "warmup": 20, "repeats": 1, "cv2_threads": 1,
          "best": {"cached": _run(50, 0.5, 0.8, 0.0, 0.0, 0, 0, 120.0),
                   "uncached": _run(50, 4.0, 2.0, 3.5, 1.2, 150, 50, 80.0)},
          "ratio_cached_uncached": 1.5, "load_avg_at_end": ["1.0", "1.0", "1.0"],
          "env": {"cpu": "Test CPU", "logical_cpus": 2, "affinity_cpus": 2, "python": "3.11",
                  "torch": "2.x", "git_commit": "abc1234"}, "time": "2026-01-01T00:00:00"}


def test_table_puts_paper_csv_next_to_ours_with_speedups(tmp_path):
    (tmp_path / "timing.json").write_text(json.dumps(TIMING))
    summary = write_timing_table("cache_loading_time", tmp_path / "timing.json", PAPER,
                                 tmp_path / "reports", "smoke")
    paper = {(r["transform"], r["use_cache"]): float(r["ms_per_100_images"])
             for r in csv.DictReader(PAPER.open())}
    assert paper == {("Mosaic", "no"): 87.1, ("Mosaic", "yes"): 24.0,
                     ("MixUp", "no"): 19.3, ("MixUp", "yes"): 12.4}
    rows = list(csv.DictReader((tmp_path / "reports/tables/cache_loading_time.csv").open()))
    assert [(r["transform"], r["use_cache"]) for r in rows] == list(paper)
    by = {(r["transform"], r["use_cache"]): r for r in rows}
    for key, value in paper.items():
        assert float(by[key]["paper_ms_per_100_images"]) == value
    assert float(by["Mosaic", "no"]["ours_ms_per_100_images"]) == pytest.approx(400.0)
    assert float(by["Mosaic", "yes"]["ours_ms_per_100_images"]) == pytest.approx(50.0)
    assert float(by["Mosaic", "no"]["ours_load_ms_per_100_images"]) == pytest.approx(350.0)
    assert float(by["Mosaic", "no"]["ours_images_loaded_per_image"]) == 3.0
    assert float(by["MixUp", "no"]["ours_images_loaded_per_image"]) == 1.0
    # speed-up = uncached / cached, on the cached row only
    assert by["Mosaic", "no"]["paper_speedup"] == "" and by["Mosaic", "no"]["ours_speedup"] == ""
    assert float(by["Mosaic", "yes"]["paper_speedup"]) == pytest.approx(87.1 / 24.0)
    assert float(by["MixUp", "yes"]["paper_speedup"]) == pytest.approx(19.3 / 12.4)
    assert float(by["Mosaic", "yes"]["ours_speedup"]) == pytest.approx(4.0 / 0.5)
    assert float(by["MixUp", "yes"]["ours_speedup"]) == pytest.approx(2.0 / 0.8)
    assert float(by["Mosaic", "yes"]["ours_speedup_without_loading"]) == pytest.approx(0.5 / 0.5)

    md = (tmp_path / "reports/tables/cache_loading_time.md").read_text()
    assert "| Mosaic | no | 87.1 | 400.0 | 350.0 | 3.00 |" in md
    assert "| Mosaic | 3.63× | 8.00× | 1.00× |" in md and "| MixUp | 1.56× | 2.50× |" in md
    assert "JPEG-decoding" in md and "60 synthetic 640×480 JPEGs" in md
    assert "Test CPU" in md and "OpenCV 1 thread" in md and "scale**: smoke" in md

    saved = json.loads((tmp_path / "reports/tables/cache_loading_time.json").read_text())
    assert saved["kind"] == "timing" and saved == json.loads(json.dumps(summary))
    assert saved["speedup"]["Mosaic"]["ours_speedup"] == pytest.approx(8.0)

    index = write_index([saved], tmp_path / "reports").read_text()
    assert "tables/cache_loading_time.md" in index and "3.63× / 8.00×" in index


@pytest.fixture
def _threads():
    old_torch, old_cv2 = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(old_torch)
    cv2.setNumThreads(old_cv2)


def test_bench_data_counts_loads_on_a_tiny_set(tmp_path, _threads):
    """`rtmdet bench data` on 12 images, 8 samples per mode: every step is timed, uncached
    Mosaic/MixUp load 3/1 extra images per call, cached ones none, images stay uint8."""
    from rtmdet.commands import bench
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "timing.json"
    args = parser.parse_args(["data", "--root", str(tmp_path / "set"), "--images", "12",
                              "--size", "128", "--n", "8", "--warmup", "6", "--repeats", "1",
                              "--out", str(out)])
    assert bench.run(args) == 0
    res = json.loads(out.read_text())
    assert res["images"] == 12 and res["image_shape_hw"] == [480, 640] and res["cv2_threads"] == 1
    cached, uncached = res["best"]["cached"], res["best"]["uncached"]
    for r in (cached, uncached):
        assert r["samples"] == 8 and r["samples_per_s"] > 0
        assert r["mosaic_ms"] > 0 and r["mixup_ms"] > 0
        assert r["mosaic_calls"] >= 8 and r["mixup_calls"] >= 8
        assert r["image_dtypes"] == ["torch.uint8", "uint8"]
    assert cached["mosaic_loads"] == cached["mixup_loads"] == 0 == cached["mosaic_load_ms"]
    assert uncached["mosaic_loads"] == 3 * uncached["mosaic_calls"]
    assert uncached["mixup_loads"] == uncached["mixup_calls"]    # MixUp prob 1.0 (rtmdet-l)
    assert uncached["total_loads"] > cached["total_loads"] >= 8
    assert 0 < uncached["mosaic_load_ms"] < uncached["mosaic_ms"]
