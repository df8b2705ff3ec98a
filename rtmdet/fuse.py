"""Inference-time BatchNorm folding (issue 10): ``conv → BN`` becomes one conv with a bias.

In eval mode BN is a per-channel affine map, so it folds into the preceding conv's weights
and bias and disappears from the forward pass (a third of RTMDet's layers, all memory-bound).

The SepBN head is the trap: with ``head.share="conv"`` one conv *weight* is shared by the
three levels while each level has its own BN. Folding in place into the shared tensor would
give every level the last level's statistics. We therefore fold on a copy of the model and
give every ``ConvBNAct`` its own fused conv, so sharing is undone exactly where the BNs
differ; with ``"conv_bn"`` the whole ConvBNAct is shared and is folded once.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .models.blocks import ConvBNAct


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv equal to ``bn(conv(x))`` in eval mode."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
    return fused


def fuse_model(model: nn.Module, channels_last: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with every ConvBNAct's BN folded into its conv.

    ``channels_last`` also converts the weights to NHWC, which oneDNN's CPU convolutions
    (depthwise ones especially) prefer; feed inputs with the same memory format.
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():  # unique modules: a shared ConvBNAct is folded once
        if isinstance(module, ConvBNAct) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn(module.conv, module.bn)
            module.bn = nn.Identity()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def count_unfused_bn(model: nn.Module) -> int:
    """BatchNorms still in the forward pass (0 after :func:`fuse_model` for our models)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
