"""CSPNeXt backbone (SPEC §2): stem, four downsampling stages, outputs at strides 8/16/32."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBNAct, CSPLayer, SPPBottleneck

# (in, out, base blocks, shortcut, SPP) of the P5 architecture before widen/deepen scaling.
P5_STAGES = ((64, 128, True, False), (128, 256, True, False),
             (256, 512, True, False), (512, 1024, False, True))


class Stage(nn.Module):
    """3×3 stride-2 downsampling conv, SPP in the last stage, then a CSP layer."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, kernel_size: int,
                 shortcut: bool, use_spp: bool, expand_ratio: float,
                 channel_attention: bool) -> None:
        super().__init__()
        self.downsample = ConvBNAct(in_ch, out_ch, 3, stride=2)
        self.spp = SPPBottleneck(out_ch, out_ch) if use_spp else None
        self.csp = CSPLayer(out_ch, out_ch, num_blocks, kernel_size, shortcut,
                            expand_ratio, channel_attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.spp is not None:
            x = self.spp(x)
        return self.csp(x)


class CSPNeXt(nn.Module):
    """The backbone. ``stage_blocks`` are the un-scaled block counts (3-6-6-3 for RTMDet,
    3-9-9-3 in the stage-depth ablation); ``deepen_factor`` scales them with Python ``round``
    and ``widen_factor`` scales channels with ``int``, exactly as the official sizes do."""

    def __init__(self, deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 stage_blocks: tuple[int, ...] = (3, 6, 6, 3), kernel_size: int = 5,
                 channel_attention: bool = True, expand_ratio: float = 0.5,
                 out_indices: tuple[int, ...] = (1, 2, 3)) -> None:
        super().__init__()
        stem_out = int(P5_STAGES[0][0] * widen_factor)
        self.stem = nn.Sequential(
            ConvBNAct(3, int(P5_STAGES[0][0] * widen_factor // 2), 3, stride=2),
            ConvBNAct(int(P5_STAGES[0][0] * widen_factor // 2),
                      int(P5_STAGES[0][0] * widen_factor // 2), 3),
            ConvBNAct(int(P5_STAGES[0][0] * widen_factor // 2), stem_out, 3),
        )
        stages = []
        for (cin, cout, shortcut, use_spp), blocks in zip(P5_STAGES, stage_blocks):
            stages.append(Stage(int(cin * widen_factor), int(cout * widen_factor),
                                max(round(blocks * deepen_factor), 1), kernel_size,
                                shortcut, use_spp, expand_ratio, channel_attention))
        self.stages = nn.ModuleList(stages)
        self.out_indices = tuple(out_indices)
        self.out_channels = [int(P5_STAGES[i][1] * widen_factor) for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs
