"""CSPNeXt-PAFPN neck (SPEC §3): top-down then bottom-up path with CSP layers, one 3×3 output
conv per level.

``widen_factor`` scales the neck's own channels relative to the backbone outputs; it is 1 for
every released size and exists for the backbone/neck split ablation (Fig. 5c).
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, CSPLayer


class CSPNeXtPAFPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int, num_csp_blocks: int = 3,
                 expand_ratio: float = 0.5, kernel_size: int = 5,
                 widen_factor: float = 1.0) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        n3, n4, n5 = (int(c * widen_factor) for c in in_channels)

        def csp(cin: int, cout: int) -> CSPLayer:
            return CSPLayer(cin, cout, num_csp_blocks, kernel_size, shortcut=False,
                            expand_ratio=expand_ratio, channel_attention=False)

        # Top-down: reduce the coarser map, upsample, concat [resampled, lateral].
        self.reduce_layers = nn.ModuleList([ConvBNAct(c5, n4, 1), ConvBNAct(n4, n3, 1)])
        self.top_down_blocks = nn.ModuleList([csp(n4 + c4, n4), csp(n3 + c3, n3)])
        # Bottom-up: the lateral inputs are the *reduced* maps R4 and R5, not T4/C5.
        self.downsamples = nn.ModuleList([ConvBNAct(n3, n3, 3, 2), ConvBNAct(n4, n4, 3, 2)])
        self.bottom_up_blocks = nn.ModuleList([csp(n3 + n3, n4), csp(n4 + n4, n5)])
        self.out_convs = nn.ModuleList([ConvBNAct(c, out_channels, 3) for c in (n3, n4, n5)])
        self.upsample = nn.Upsample(scale_factor=2.0, mode="nearest")

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = feats
        r5 = self.reduce_layers[0](c5)
        t4 = self.top_down_blocks[0](torch.cat([self.upsample(r5), c4], 1))
        r4 = self.reduce_layers[1](t4)
        p3 = self.top_down_blocks[1](torch.cat([self.upsample(r4), c3], 1))
        p4 = self.bottom_up_blocks[0](torch.cat([self.downsamples[0](p3), r4], 1))
        p5 = self.bottom_up_blocks[1](torch.cat([self.downsamples[1](p4), r5], 1))
        return [conv(p) for conv, p in zip(self.out_convs, (p3, p4, p5))]
