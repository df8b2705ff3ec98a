"""RTMDet-Ins head (SPEC §9): the detection head plus a kernel branch and a mask feature branch.

The detection part reuses :class:`RTMDetHead` (towers, SepBN sharing, 1×1 predictors). On top:

- per level a **kernel tower** (``stacked_convs`` ConvBNAct, never shared across levels) and a
  1×1 conv predicting the 169 parameters of each prior's dynamic mask network;
- :class:`MaskFeatModule`: the three levels fused at stride 8 into 8 prototype maps.

Two quirks of the official implementation are reproduced because released weights depend on
them: the regression tower *is* the classification tower (the same modules registered twice:
official checkpoints store identical ``reg_convs`` and ``cls_convs`` tensors, and the official
parameter counts count them once), and distances are ``ReLU(reg)·stride`` (regression bias
initialised to 1 so that every prior starts with a non-degenerate box). The official forward
runs that tower twice per level; so do we by default, which keeps FLOPs (SPEC §1: Ins-tiny
11.937 G), latency and BatchNorm running-stat updates (two per step) as the official model.
``reuse_cls_feats=True`` runs it once: identical outputs in eval, ~12 % fewer FLOPs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtmdet.geometry.masks import dynamic_param_counts

from .blocks import ConvBNAct
from .head import RTMDetHead, ShareMode


class MaskFeatModule(nn.Module):
    """Prototype maps at the finest level's resolution.

    Upsampling P4/P5 to P3 and fusing lets the prototypes mix fine detail with large context;
    only 8 channels are kept because each instance's dynamic network reads all of them.
    """

    def __init__(self, in_channels: int, feat_channels: int, num_levels: int = 3,
                 stacked_convs: int = 4, num_prototypes: int = 8) -> None:
        super().__init__()
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(*[
            ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels, 3)
            for i in range(stacked_convs)])
        self.projection = nn.Conv2d(feat_channels, num_prototypes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        fused = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                              for f in feats[1:]]
        return self.projection(self.stacked_convs(self.fusion_conv(torch.cat(fused, dim=1))))


class RTMDetInsHead(RTMDetHead):
    def __init__(self, num_classes: int = 80, in_channels: int = 256, feat_channels: int = 256,
                 stacked_convs: int = 2, strides: tuple[int, ...] = (8, 16, 32),
                 share: ShareMode = "conv", pred_kernel_size: int = 1,
                 num_prototypes: int = 8, dyconv_channels: int = 8, num_dyconvs: int = 3,
                 mask_stacked_convs: int = 4, reuse_cls_feats: bool = False) -> None:
        super().__init__(num_classes, in_channels, feat_channels, stacked_convs, strides,
                         share, exp_on_reg=False, pred_kernel_size=pred_kernel_size)
        self.reg_convs = self.cls_convs          # official quirk, see the module docstring
        self.reuse_cls_feats = reuse_cls_feats
        self.num_prototypes = num_prototypes
        self.dyconv_channels = dyconv_channels
        self.num_dyconvs = num_dyconvs
        w, b = dynamic_param_counts(num_prototypes + 2, dyconv_channels, num_dyconvs)
        self.num_gen_params = sum(w) + sum(b)
        self.kernel_convs = nn.ModuleList()
        self.rtm_kernel = nn.ModuleList()
        pad = pred_kernel_size // 2
        for _ in self.strides:
            self.kernel_convs.append(nn.Sequential(*[
                ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels, 3)
                for i in range(stacked_convs)]))
            self.rtm_kernel.append(nn.Conv2d(feat_channels, self.num_gen_params,
                                             pred_kernel_size, padding=pad))
        self.mask_head = MaskFeatModule(in_channels, feat_channels, len(self.strides),
                                        mask_stacked_convs, num_prototypes)
        self.init_weights()

    @property
    def mask_stride(self) -> int:
        return self.strides[0]

    def init_weights(self, prior_prob: float = 0.01) -> None:
        super().init_weights(prior_prob)
        for conv in self.rtm_reg:
            nn.init.constant_(conv.bias, 1.0)

    def forward_tower(self, feats: list[torch.Tensor]
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(cls_feats, reg_feats): the same tower's output, computed twice unless
        ``reuse_cls_feats`` (quirk, see the module docstring)."""
        if not self.reuse_cls_feats:
            return super().forward_tower(feats)
        cls_feats = [self.cls_convs[level](x) for level, x in enumerate(feats)]
        return cls_feats, cls_feats

    def forward(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                          list[torch.Tensor], torch.Tensor]:
        """Per-level ``cls_scores`` (N, C, H, W), ``bbox_preds`` (N, 4, H, W) distances in
        pixels, ``kernel_preds`` (N, 169, H, W), and ``mask_feats`` (N, 8, H0, W0) at stride 8."""
        cls_feats, reg_feats = self.forward_tower(feats)
        cls_scores, bbox_preds, kernel_preds = [], [], []
        for level, (x, stride) in enumerate(zip(feats, self.strides)):
            cls_scores.append(self.rtm_cls[level](cls_feats[level]))
            bbox_preds.append(F.relu(self.rtm_reg[level](reg_feats[level])) * stride)
            kernel_preds.append(self.rtm_kernel[level](self.kernel_convs[level](x)))
        return cls_scores, bbox_preds, kernel_preds, self.mask_head(feats)
