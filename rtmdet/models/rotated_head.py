"""RTMDet-R head: the detection head plus an angle branch, and the rotated distance coder
(SPEC §10).

The head *is* an :class:`RTMDetHead` (same towers, sharing modes, classifier and distance
convs, and therefore the same parameter names), so a COCO-trained detector's weights load into
it unchanged; only the per-level 1×1 angle convs (``rtm_ang``) and, when the class count
differs, the classifier are new. The angle is read from the *regression* tower: orientation is
a localisation property and shares the features the distances use.
"""
from __future__ import annotations

import torch
from torch import nn

from .head import RTMDetHead, ShareMode


class RotatedRTMDetHead(RTMDetHead):
    def __init__(self, num_classes: int = 15, in_channels: int = 256, feat_channels: int = 256,
                 stacked_convs: int = 2, strides: tuple[int, ...] = (8, 16, 32),
                 share: ShareMode = "conv", exp_on_reg: bool = True,
                 pred_kernel_size: int = 1) -> None:
        super().__init__(num_classes, in_channels, feat_channels, stacked_convs, strides, share,
                         exp_on_reg, pred_kernel_size)
        pad = pred_kernel_size // 2
        self.rtm_ang = nn.ModuleList(
            nn.Conv2d(feat_channels, 1, pred_kernel_size, padding=pad) for _ in self.strides)
        self.init_angle()

    def init_angle(self) -> None:
        """Small weights and zero bias: every box starts axis-aligned (θ ≈ 0)."""
        for conv in self.rtm_ang:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, feats: list[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per level: ``cls_scores`` (N, C, H, W) logits, ``bbox_preds`` (N, 4, H, W) distances
        (left, top, right, bottom) in input pixels measured in the box's rotated frame, and
        ``angle_preds`` (N, 1, H, W) in radians (raw, not wrapped)."""
        cls_feats, reg_feats = self.forward_tower(feats)
        cls_scores, bbox_preds, angle_preds = [], [], []
        for level, stride in enumerate(self.strides):
            cls_scores.append(self.rtm_cls[level](cls_feats[level]))
            reg = self.rtm_reg[level](reg_feats[level])
            bbox_preds.append((reg.exp() if self.exp_on_reg else reg) * stride)
            angle_preds.append(self.rtm_ang[level](reg_feats[level]))
        return cls_scores, bbox_preds, angle_preds
