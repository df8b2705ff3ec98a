"""Parameter groups, lr scaling, the flat-cosine / cosine schedule (hand-computed values) and
the EMA (hand-computed for a couple of steps, shared tensors once)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rtmdet.models.build import build_model
from rtmdet.config import load_config
from rtmdet.engine.ema import ModelEMA
from rtmdet.engine.optim import LRSchedule, build_optimizer, param_groups

torch.set_num_threads(1)


def _names(groups, which):
    return set(next((g["param_names"] for g in groups if g["group"] == which), []))


def test_param_groups_on_tiny_model():
    model = build_model("rtmdet-tiny")
    groups = param_groups(model, 0.05)
    decay, no_decay = _names(groups, "decay"), _names(groups, "no_decay")
    assert not decay & no_decay
    all_params = list(model.parameters())                  # deduplicated by torch
    assert sum(len(g["params"]) for g in groups) == len(all_params)
    assert len({id(p) for g in groups for p in g["params"]}) == len(all_params)
    # Shared head convs (share="conv"): level 0's tensor only, once.
    assert "head.cls_convs.0.0.conv.weight" in decay
    assert not any(n.startswith("head.cls_convs.1.") and n.endswith("conv.weight") for n in decay)
    # BN (every level's separate BN), every bias incl. channel attention → no decay.
    assert "head.cls_convs.1.0.bn.weight" in no_decay and "head.rtm_cls.0.bias" in no_decay
    attn = [n for n in dict(model.named_parameters()) if "attention.fc" in n]
    assert attn, "tiny has channel attention"
    assert {n for n in attn if n.endswith("bias")} <= no_decay
    assert {n for n in attn if n.endswith("weight")} <= decay
    norm_names = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for n in decay:
        assert n.rsplit(".", 1)[0] not in norm_names and not n.endswith("bias")
    with_norm = param_groups(model, 0.05, norm_decay=True)
    assert "backbone.stem.0.bn.weight" in _names(with_norm, "decay")
    assert "head.rtm_cls.0.bias" in _names(with_norm, "no_decay")
    with_bias = param_groups(model, 0.05, bias_decay=True)
    assert "head.rtm_cls.0.bias" in _names(with_bias, "decay")
    assert "backbone.stem.0.bn.bias" in _names(with_bias, "no_decay")


def test_build_optimizer_lr_scaling_and_kinds():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    cfg = load_config("rtmdet-tiny").train
    opt = build_optimizer(model, cfg, total_batch_size=64)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.004 * 64 / 256] * 2)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 3]   # conv w | conv b, bn w, bn b
    sgd = build_optimizer(model, cfg.model_copy(update={"optimizer": "sgd"}), 256)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.004)


def _sched(kind="flat_cosine", **kw):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=5e-4)
    args = dict(iters_per_epoch=10, epochs=30, kind=kind, warmup_iters=20, warmup_ratio=1e-5,
                flat_epochs=15, min_lr_ratio=0.05)
    args.update(kw)
    return opt, LRSchedule(opt, **args)


def _lr_at(kind, t):
    opt, s = _sched(kind)
    for _ in range(t + 1):
        s.step()
    return opt.param_groups[0]["lr"]


@pytest.mark.parametrize("t,expected", [
    (0, 5e-4 * 1e-5),                      # warm-up start
    (10, 5e-4 * 0.500005),                 # half-way: 1e-5 + (1 − 1e-5)·0.5
    (20, 5e-4), (149, 5e-4), (150, 5e-4),  # flat until epoch 15 (iteration 150)
    (225, 5e-4 * 0.525),                   # half the cosine: 0.05 + 0.95·0.5
    (300, 5e-4 * 0.05),                    # the end
])
def test_flat_cosine_values(t, expected):
    assert _lr_at("flat_cosine", t) == pytest.approx(expected, rel=1e-9)


def test_plain_cosine_values():
    # t = 10: warm 0.500005 × (0.05 + 0.95·(1 + cos(π·10/300))/2) = 0.500005 × 0.997398.
    assert _lr_at("cosine", 10) == pytest.approx(5e-4 * 0.500005 * 0.9973983, rel=1e-6)
    assert _lr_at("cosine", 150) == pytest.approx(5e-4 * 0.525, rel=1e-9)
    assert _lr_at("cosine", 300) == pytest.approx(5e-4 * 0.05, rel=1e-9)


def test_schedule_resume_continues_identically():
    opt, s = _sched()
    for _ in range(173):
        s.step()
    state = s.state_dict()
    lr_now = opt.param_groups[0]["lr"]
    opt2, s2 = _sched()
    s2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == lr_now
    s.step(), s2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(
        5e-4 * (0.05 + 0.95 * (1 + math.cos(math.pi * 23 / 150)) / 2), rel=1e-12)
    _, other = _sched(epochs=40)
    with pytest.raises(ValueError, match="schedule mismatch"):
        other.load_state_dict(state)


class _Shared(nn.Module):
    """A conv used at two 'levels' (like the head's shared towers) plus a BatchNorm."""

    def __init__(self):
        super().__init__()
        conv = nn.Linear(2, 2)
        self.levels = nn.ModuleList([conv, conv])
        self.bn = nn.BatchNorm1d(2)


def test_ema_hand_computed_and_shared_once():
    torch.manual_seed(0)
    model = _Shared()
    ema = ModelEMA(model, momentum=2e-4, warmup=2000)
    w0 = model.levels[0].weight.detach().clone()
    m0 = (1 - 2e-4) * math.exp(-1 / 2000) + 2e-4
    m1 = (1 - 2e-4) * math.exp(-2 / 2000) + 2e-4
    # 0.9998·exp(−0.0005) + 0.0002 = 0.9998·0.99950012 + 0.0002
    assert ema.momentum_at(0) == pytest.approx(m0) and m0 == pytest.approx(0.99950022, abs=1e-8)
    with torch.no_grad():
        model.levels[0].weight.fill_(1.0)
        model.bn.running_mean.fill_(2.0)
        model.bn.num_batches_tracked.fill_(7)
    ema.update(model)
    with torch.no_grad():
        model.levels[0].weight.fill_(3.0)
    ema.update(model)
    # w_ema = (1 − m1)·((1 − m0)·w0 + m0·1) + m1·3 — a second update of the shared tensor per
    # step would give a different value.
    expected = (1 - m1) * ((1 - m0) * w0 + m0 * 1.0) + m1 * 3.0
    assert torch.allclose(ema.module.levels[1].weight, expected, atol=1e-7)
    assert ema.module.levels[0].weight is ema.module.levels[1].weight
    # Float buffer averaged: running_mean 0 → m0·2 → (1 − m1)·m0·2 + m1·2.
    assert ema.module.bn.running_mean[0].item() == pytest.approx((1 - m1) * m0 * 2 + m1 * 2,
                                                                 rel=1e-6)
    assert ema.module.bn.num_batches_tracked.item() == 7       # non-float: copied
    assert ema.updates == 2 and not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_dict_round_trip():
    model = _Shared()
    ema = ModelEMA(model)
    ema.update(model)
    other = ModelEMA(_Shared())
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    for a, b in zip(ema.module.state_dict().values(), other.module.state_dict().values()):
        assert torch.equal(a, b)
