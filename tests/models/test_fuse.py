"""BN folding: the fused model computes the same function (float64, tight) for every head
sharing mode, including SepBN where the naive in-place fold is wrong."""
from __future__ import annotations

import pytest
import torch

from rtmdet.models.build import build_model
from rtmdet.export.onnx import flatten_outputs
from rtmdet.models.weights import calibrate_bn
from rtmdet.models.fuse import count_unfused_bn, fuse_conv_bn, fuse_model


# onnxruntime/fused-model comparisons run single-threaded (conftest.single_thread).
pytestmark = pytest.mark.usefixtures("single_thread")


def _random_bn_model(share: str):
    torch.manual_seed(0)
    model = calibrate_bn(build_model("rtmdet-tiny", [f"model.head.share={share}"]), size=128)
    with torch.no_grad():  # non-trivial affine parameters so folding has something to do
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.double()


def test_fuse_conv_bn_hand_case():
    conv = torch.nn.Conv2d(1, 2, 1, bias=False)
    bn = torch.nn.BatchNorm2d(2, eps=0.0).eval()
    with torch.no_grad():
        conv.weight[:] = torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)
        bn.running_mean[:] = torch.tensor([1.0, 0.0])
        bn.running_var[:] = torch.tensor([4.0, 1.0])
        bn.weight[:] = torch.tensor([3.0, 1.0])
        bn.bias[:] = torch.tensor([0.5, -2.0])
    fused = fuse_conv_bn(conv, bn)
    # channel 0: (2x − 1)/2 · 3 + 0.5 = 3x − 1; channel 1: −x − 2
    assert fused.weight.flatten().tolist() == [3.0, -1.0]
    assert fused.bias.tolist() == [-1.0, -2.0]


@pytest.mark.parametrize("share", ["conv", "conv_bn", "none"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_model_matches(share, channels_last):
    model = _random_bn_model(share)
    fused = fuse_model(model, channels_last=channels_last)
    assert count_unfused_bn(fused) == 0 and count_unfused_bn(model) > 0  # original untouched
    x = torch.randn(1, 3, 96, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = flatten_outputs(model.forward_raw(x)), flatten_outputs(fused.forward_raw(x))
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)


def test_naive_shared_fold_would_be_wrong():
    """Why fuse_model copies: folding each level's BN into the *shared* conv in place leaves
    every level with the last fold, which changes the outputs of SepBN heads."""
    model = _random_bn_model("conv")
    x = torch.randn(1, 3, 96, 96, dtype=torch.float64)
    with torch.no_grad():
        want = flatten_outputs(model.forward_raw(x))
        for tower in list(model.head.cls_convs) + list(model.head.reg_convs):
            for layer in tower:
                fused = fuse_conv_bn(layer.conv, layer.bn)
                layer.conv.weight.copy_(fused.weight)  # in place into the shared tensor
                layer.conv.bias = fused.bias
                layer.bn = torch.nn.Identity()
        bad = flatten_outputs(model.forward_raw(x))
    assert max(float((w - b).abs().max()) for w, b in zip(want, bad)) > 1e-3
