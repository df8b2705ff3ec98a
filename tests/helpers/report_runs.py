"""Hand-made run folders for the report tests: known APs, a config, a loss curve, a PR curve
and a bench.json per variant, so tables can be checked against hand-computed numbers."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from rtmdet.pipeline.spec import list_experiments

ROOT = Path(__file__).resolve().parents[2]
EXPS = list_experiments(ROOT / "experiments")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
       b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
       b"\x00\x00IEND\xaeB`\x82")


def fake_runs(root: Path, ablation: str, aps: dict[str, list[float]], setting: str = "ablation",
              latency: float = 3.0) -> Path:
    runs = root / "runs" / ablation
    cfg = {"train": {"epochs": 2, "max_iters_per_epoch": 4, "stage2_epochs": 1, "batch_size": 4,
                     "ema": True, "optimizer": "adamw", "base_lr": 0.004, "base_batch_size": 256},
           "data": {"img_size": 128}, "model": {"backbone": {"widen_factor": 0.25}}}
    cx = {}
    for i, (variant, values) in enumerate(aps.items()):
        for seed, ap in enumerate(values):
            d = runs / variant / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "eval.json").write_text(json.dumps({"metrics": {"AP": ap}, "setting": setting}))
            (d / "config.yaml").write_text(yaml.safe_dump(cfg))
            (d / "metrics.csv").write_text("global_iter,loss\n1,2.0\n2,1.5\n")
            (d / "pr_curve.png").write_bytes(PNG)
        (runs / variant / "bench.json").write_text(json.dumps({
            "latency": {"median_ms": latency + i}, "backend": "onnxruntime", "device": "cpu",
            "fp16": False, "size": 128, "threads": 1}))
        cx[variant] = {"params": {"total": 50_000_000 + i}, "flops": {"total": 80e9}}
    (runs / "complexity.json").write_text(json.dumps({"variants": cx}))
    return runs
