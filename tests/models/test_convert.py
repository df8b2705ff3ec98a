"""Official-name state dicts for every size load strictly; our checkpoints round-trip."""
from __future__ import annotations

import re

import pytest
import torch

import rtmdet
from rtmdet.models.weights import WeightMismatchError


def to_official_names(model) -> dict[str, torch.Tensor]:
    """Our state dict renamed to mmdet's scheme (written from the official key layout:
    ``backbone.stage{k}.{0: downsample, 1: SPP in stage 4, last: CSP}``, ``bbox_head.``)."""
    out = {}
    for key, value in model.state_dict().items():
        m = re.match(r"backbone\.stages\.(\d)\.(downsample|spp|csp)\.(.*)", key)
        if m:
            stage = int(m.group(1))
            pos = {"downsample": 0, "spp": 1, "csp": 2 if stage == 3 else 1}[m.group(2)]
            key = f"backbone.stage{stage + 1}.{pos}.{m.group(3)}"
        elif key.startswith("head."):
            key = "bbox_head." + key[5:]
        out[key] = value.clone()
    return out


@pytest.mark.parametrize("name", ["rtmdet-tiny", "rtmdet-s", "rtmdet-m", "rtmdet-l", "rtmdet-x"])
def test_every_size_imports_official_layout(name):
    src = rtmdet.build_model(name)
    with torch.no_grad():  # make BN non-trivial so a mis-mapped tensor changes outputs
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    official = to_official_names(src)
    assert any(k.startswith("backbone.stage4.2.") for k in official)   # CSP after SPP
    dst = rtmdet.build_model(name)
    rtmdet.load_mmdet_weights(dst, official)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = src.eval().forward_raw(x), dst.eval().forward_raw(x)
    for la, lb in zip(a[0] + a[1], b[0] + b[1]):
        assert torch.equal(la, lb)


def test_checkpoint_roundtrip_weights_only(tmp_path):
    cfg = rtmdet.load_config("rtmdet-tiny", ["model.head.num_classes=5"])
    model = rtmdet.build_model(cfg)
    path = rtmdet.save_weights(tmp_path / "w.pt", model, cfg.to_dict(), {"classes": list("abcde")})
    ckpt = torch.load(path, weights_only=True)                         # plain data only
    assert ckpt["meta"]["classes"] == list("abcde")
    again, cfg2 = rtmdet.load_weights(path)
    assert cfg2 == cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


def test_load_weights_rejects_foreign_file(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(WeightMismatchError, match="not an rtmdet checkpoint"):
        rtmdet.load_weights(tmp_path / "x.pt")
