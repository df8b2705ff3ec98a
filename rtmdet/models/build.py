"""Config → model. Explicit constructor calls, no registry."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from rtmdet.config import Config, ModelConfig, load_config

from .cspnext import CSPNeXt
from .detector import RTMDet
from .head import RTMDetHead
from .ins_detector import RTMDetIns
from .ins_head import RTMDetInsHead
from .pafpn import CSPNeXtPAFPN
from .rotated_detector import RotatedRTMDet
from .rotated_head import RotatedRTMDetHead


def build_model_from_config(mcfg: ModelConfig, seed: int | None = None) -> RTMDet:
    """The model of ``mcfg``, initialised as the official code initialises it
    (:mod:`rtmdet.models.init`); ``seed`` gives each component its own init stream."""
    model = _construct(mcfg)
    model.init_weights(mcfg.backbone.init, seed)
    return model


def _construct(mcfg: ModelConfig) -> RTMDet:
    b, n, h = mcfg.backbone, mcfg.neck, mcfg.head
    if mcfg.type not in ("det", "ins", "rotated"):
        raise NotImplementedError(f"model.type={mcfg.type!r} is not implemented yet")
    backbone = CSPNeXt(b.deepen_factor, b.widen_factor, tuple(b.stage_blocks), b.kernel_size,
                       b.channel_attention, b.expand_ratio)
    neck = CSPNeXtPAFPN(backbone.out_channels, n.out_channels, n.num_csp_blocks,
                        n.expand_ratio, n.kernel_size, n.widen_factor)
    if mcfg.type == "rotated":
        return RotatedRTMDet(backbone, neck, RotatedRTMDetHead(
            h.num_classes, n.out_channels, n.out_channels, h.stacked_convs, tuple(h.strides),
            h.share, h.exp_on_reg, h.pred_kernel_size))
    if mcfg.type == "ins":
        return RTMDetIns(backbone, neck, RTMDetInsHead(
            h.num_classes, n.out_channels, n.out_channels, h.stacked_convs, tuple(h.strides),
            h.share, h.pred_kernel_size, h.num_prototypes, h.dyconv_channels, h.num_dyconvs,
            h.mask_stacked_convs))
    head = RTMDetHead(h.num_classes, n.out_channels, n.out_channels, h.stacked_convs,
                      tuple(h.strides), h.share, h.exp_on_reg, h.pred_kernel_size)
    return RTMDet(backbone, neck, head)


def build_model(source: str | Path | Config | ModelConfig, overrides: list[str] | None = None,
                seed: int | None = None) -> nn.Module:
    """Build from a preset name (``"rtmdet-s"``), a YAML path, a :class:`Config` or a
    :class:`ModelConfig`. Weights are randomly initialised as the official code does
    (:mod:`rtmdet.models.init`)."""
    if isinstance(source, ModelConfig):
        return build_model_from_config(source, seed)
    return build_model_from_config(load_config(source, overrides).model, seed)
