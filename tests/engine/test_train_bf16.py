"""`train.amp` on CPU: bf16 autocast where the CPU has native bf16 (convolutions really run in
bf16, the assigner and losses in fp32, the weights stay fp32), else fp32 with one log line."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import rtmdet.models.precision as precision
from rtmdet.data.synthetic import write_synth_coco
from rtmdet.engine.trainer import Trainer
from tests.engine.test_train import tiny_cfg

SHORT = {"train.epochs": 1, "train.max_iters_per_epoch": 3, "train.flat_epochs": 0,
         "train.stage2_epochs": 0, "train.warmup_iters": 1}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synth_coco(tmp_path_factory.mktemp("synth_bf16"), n_train=8, n_val=4, seed=0,
                            size_range=(96, 160), max_objects=5)


def _conv_dtypes(trainer: Trainer) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    first_conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def test_cpu_bf16_training_runs_convs_in_bf16_and_keeps_fp32_weights(synth, tmp_path):
    ok, why = precision.bf16_support()
    if not ok:
        pytest.skip(f"no native bf16 on this CPU: {why}")
    fp32 = Trainer(tiny_cfg(synth, tmp_path / "fp32", **SHORT))
    fp32.fit()
    bf16 = Trainer(tiny_cfg(synth, tmp_path / "bf16", **SHORT, **{"train.amp": True}))
    assert bf16.cpu_bf16 and not fp32.cpu_bf16
    seen = _conv_dtypes(bf16)
    bf16.fit()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    b = [h["loss"] for h in bf16.history]
    assert all(torch.isfinite(torch.tensor(b)))
    # same init, same first batch: the classification loss (dense, over every prior) differs by
    # bf16 rounding only; the box loss (a few positives, which the assigner may pick otherwise
    # when the predictions move by 2^-9) only roughly
    fa, fb = fp32.history[0], bf16.history[0]
    assert fb["loss_cls"] == pytest.approx(fa["loss_cls"], rel=0.03)
    assert fb["loss_cls"] != fa["loss_cls"]          # it did run in bf16
    assert fb["loss_bbox"] == pytest.approx(fa["loss_bbox"], rel=0.5)


def test_cpu_bf16_falls_back_to_fp32_with_one_line(synth, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(precision, "bf16_support", lambda: (False, "no avx512_bf16 (test)"))
    monkeypatch.setattr(precision, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="rtmdet.models.precision"):
        t = Trainer(tiny_cfg(synth, tmp_path / "amp", **SHORT, **{"train.amp": True}))
    assert not t.cpu_bf16
    lines = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
    assert lines == ["bf16 requested but unavailable: no avx512_bf16 (test); running fp32"]
    seen = _conv_dtypes(t)
    t.fit()
    assert set(seen) == {torch.float32}
    ref = Trainer(tiny_cfg(synth, tmp_path / "ref", **SHORT))
    ref.fit()
    assert [h["loss"] for h in t.history] == [h["loss"] for h in ref.history]
