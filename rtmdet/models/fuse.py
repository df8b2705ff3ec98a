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
import weakref

import torch
from torch import nn

from .blocks import ConvBNAct


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


# Cache of fused copies for the default ``predict`` fast path. A WeakKeyDictionary rather than
# an attribute on the model so that the copy is never registered as a submodule, saved in a
# checkpoint, deep-copied along with the model, or kept alive after the model is gone.
_FAST_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]]" = \
    weakref.WeakKeyDictionary()


def weights_key(model: nn.Module) -> tuple:
    """A cheap fingerprint that changes whenever any parameter or buffer may have changed.

    Every in-place write (optimizer steps, BN running-stat updates, ``load_state_dict``'s
    ``copy_``) bumps a tensor's ``_version``; ``.to()``/``.data =`` swaps storage, caught by
    ``data_ptr``/dtype/device. A few hundred tuples per call: microseconds next to a forward.
    """
    return tuple((name, t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
                 for name, t in (*model.named_parameters(), *model.named_buffers()))


def fast_inference_model(model: nn.Module) -> nn.Module:
    """The BN-folded, channels-last copy of ``model``, rebuilt only when its weights changed.

    Raises ``RuntimeError`` for tensors without a version counter (created under
    ``torch.inference_mode``); callers fall back to the plain model then.
    """
    key = weights_key(model)
    hit = _FAST_CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    fused = fuse_model(model, channels_last=True).requires_grad_(False)
    _FAST_CACHE[model] = (key, fused)
    return fused


def clear_fast_cache(model: nn.Module | None = None) -> None:
    """Drop the cached fused copy of ``model`` (or of every model)."""
    if model is None:
        _FAST_CACHE.clear()
    else:
        _FAST_CACHE.pop(model, None)
