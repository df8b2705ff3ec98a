"""Our side of ``benchmarks/vs_official.py``: the same measurements as the official worker
(``vs_official_mm.py``), on our model loaded with the official weights, through the code paths
users run — ``rtmdet.bench.runners`` for inference (what ``rtmdet bench latency`` times), the
:class:`~rtmdet.engine.trainer.Trainer`'s own ``train_step`` (schedule, normalisation, forward,
assigner, losses, backward with the divergence guard's gradient norm, fused AdamW, EMA), and the
training dataset of :func:`rtmdet.data.loader.build_train_dataset` (stage 1, cached
Mosaic/MixUp) for the data pipeline."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from train_step import random_targets  # benchmarks/: the same random boxes
from vs_official_stats import cycling_items, time_calls

from rtmdet.bench.latency import _int8_graph
from rtmdet.bench.runners import openvino_runner, ort_runner, torch_runner
from rtmdet.config import load_config
from rtmdet.data.loader import build_train_dataset
from rtmdet.engine.ema import ModelEMA
from rtmdet.engine.optim import scaled_lr
from rtmdet.engine.trainer import Trainer
from rtmdet.export.onnx import export_onnx, flatten_outputs
from rtmdet.models.build import build_model
from rtmdet.models.precision import resolve_dtype
from rtmdet.models.weights import load_mmdet_weights


class Ours:
    """Runners by name (``plain``, ``fused_cl``, ``ort``, ``bf16``, ``int8``, ``ov_fp32``,
    ``ov_bf16``, ``train``, ``data``), each a no-argument call, timed like the worker times its
    own."""

    def __init__(self) -> None:
        self.runners: dict[str, Callable[[], Any]] = {}
        self._keep: list[Any] = []          # temp dirs of the trainers, alive until exit

    @staticmethod
    def model(size: str, weights: Path) -> torch.nn.Module:
        model = build_model(f"rtmdet-{size}")
        load_mmdet_weights(model, torch.load(weights, weights_only=True))
        return model.eval()

    def infer(self, size: str, weights: Path, x: torch.Tensor, work: Path,
              threads: int) -> dict[str, list[torch.Tensor]]:
        model = self.model(size, weights)
        onnx = work / f"ours_{size}-{x.shape[-1]}.onnx"
        export_onnx(model, onnx, x.shape[-1])
        int8 = _int8_graph(onnx, x, None, [])              # Gaussian calibration: latency only
        bf16 = resolve_dtype("bf16", "cpu")                 # fp32 + one line without native bf16
        runners = {"plain": torch_runner(model, x, "cpu", False, fuse=False, channels_last=False),
                   "fused_cl": torch_runner(model, x, "cpu", False),
                   "ort": ort_runner(onnx, x, "cpu", threads),
                   "bf16": torch_runner(model, x, "cpu", False, dtype=bf16),
                   "int8": ort_runner(int8, x, "cpu", threads, dtype="int8"),
                   "ov_fp32": openvino_runner(onnx, x, threads),
                   "ov_bf16": openvino_runner(onnx, x, threads, bf16)}
        outputs = {}
        for k, r in runners.items():
            self.runners[k] = r.step
            raw = r.step()
            outputs[k] = ([torch.from_numpy(a) for a in raw] if r.backend != "torch"
                          else [t.float() for t in flatten_outputs(raw)])
        return outputs

    def openvino(self, name: str, onnx: Path, x: torch.Tensor, threads: int,
                 dtype: str) -> list[torch.Tensor]:
        """Runner ``name``: any ONNX graph (the official one too: a graph is data, the runtime
        is ours to choose) compiled by OpenVINO; returns its outputs on ``x``."""
        r = openvino_runner(onnx, x, threads, resolve_dtype(dtype, "cpu"))
        self.runners[name] = r.step
        return [torch.from_numpy(a) for a in r.step()]

    @staticmethod
    def batch(batch: int, size: int) -> dict[str, Any]:
        """One training batch both sides train on: uint8 BGR noise and random boxes."""
        gen = torch.Generator().manual_seed(0)
        targets = random_targets(batch, size, 80, gen)
        return {"images": torch.randint(0, 256, (batch, 3, size, size), generator=gen,
                                        dtype=torch.uint8),
                "boxes": [t["boxes"] for t in targets], "labels": [t["labels"] for t in targets]}

    def train(self, size: str, weights: Path, batch_file: Path, img: int, root: Path,
              work: Path) -> float:
        """A Trainer on the official weights; returns its peak learning rate (the official side
        uses the same, so both optimizers see the same step sizes)."""
        b = torch.load(batch_file, weights_only=True)
        tmp = tempfile.TemporaryDirectory(dir=work)
        self._keep.append(tmp)
        cfg = load_config(f"rtmdet-{size}", {"data.root": str(root), "data.img_size": img,
                                             "train.batch_size": len(b["images"]),
                                             "data.num_workers": 0})
        trainer = Trainer(cfg, work_dir=tmp.name)
        load_mmdet_weights(trainer.model, torch.load(weights, weights_only=True))
        if trainer.ema:
            trainer.ema = ModelEMA(trainer.model, cfg.train.ema_momentum, cfg.train.ema_warmup)
        targets = [{"boxes": bx, "labels": lb} for bx, lb in zip(b["boxes"], b["labels"])]
        self.runners["train"] = lambda: trainer.train_step(b["images"], targets)
        t = cfg.train
        return scaled_lr(t.base_lr, t.base_batch_size, t.batch_size)

    def data(self, preset: str, root: Path, size: int, warmup: int) -> dict[str, Any]:
        cfg = load_config(preset, {"data.root": str(root), "data.img_size": size,
                                   "data.cached": True})
        ds = build_train_dataset(cfg)
        self.runners["data"] = item = cycling_items(ds, warmup)
        d = cfg.data
        return {"images": len(ds), "data_config": d.model_dump(mode="json"),
                "item_image_shape": list(item()["img"].shape)}

    def time(self, what: str, n: int) -> list[float]:
        return time_calls(self.runners[what], n)
