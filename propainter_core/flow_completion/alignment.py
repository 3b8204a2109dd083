"""Second-order deformable alignment: warp the two previous propagated features onto the current one."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops.deform_conv import ModulatedDeformConv2d

KERNEL_SIZE = 3
KERNEL_TAPS = KERNEL_SIZE * KERNEL_SIZE


class SecondOrderDeformableAlignment(ModulatedDeformConv2d):
    """A 3x3 modulated deformable convolution whose offsets and mask come from a conv head.

    Input ``x`` is the concatenation of the features propagated from the previous two frames
    (``2 * C`` channels); ``condition`` is ``[previous, current, second previous]``
    (``3 * C`` channels). The head ``conv_offset`` predicts ``27 * G`` channels split in thirds:
    dy/dx halves bounded by ``max_residue_magnitude * tanh`` and a sigmoid modulation mask.

    Args:
        channels: ``C``, the propagated feature width (output width; input is ``2 * C``).
        deform_groups: ``G``.
        max_residue_magnitude: offset bound in pixels.
        negative_slope: LeakyReLU slope inside the offset head.
    """

    def __init__(self, channels: int, *, deform_groups: int, max_residue_magnitude: float,
                 negative_slope: float) -> None:
        super().__init__(2 * channels, channels, KERNEL_SIZE, padding=KERNEL_SIZE // 2,
                         deform_groups=deform_groups)
        self.max_residue_magnitude = max_residue_magnitude
        # parity: model/recurrent_flow_completion.py:15-23; the head reads 3 * C channels.
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(channels, 3 * KERNEL_TAPS * deform_groups, 3, 1, 1),
        )
        self.zero_offset_head()

    def zero_offset_head(self) -> None:
        """Start from zero offsets and a 0.5 mask, like the official initialisation (misc.constant_init)."""
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def offsets_and_mask(self, condition: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, 3C, h, w]`` -> offsets ``[B, 2*G*9, h, w]`` (pixels) and mask ``[B, G*9, h, w]`` in (0, 1)."""
        head = self.conv_offset(condition)  # [B, 27*G, h, w]
        # parity: model/recurrent_flow_completion.py:29-39: thirds (o1, o2, mask); torch.cat((o1, o2))
        # is the first two thirds unchanged, so the offsets are channels [0, 18G) as one block.
        offset_part, mask_part = head.split([2 * self.deform_groups * KERNEL_TAPS,
                                             self.deform_groups * KERNEL_TAPS], dim=1)
        offset = self.max_residue_magnitude * torch.tanh(offset_part)
        return offset, torch.sigmoid(mask_part)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """Align ``x`` ``[B, 2C, h, w]`` under ``condition`` ``[B, 3C, h, w]``; returns ``[B, C, h, w]``."""
        offset, mask = self.offsets_and_mask(condition)
        return self.deform_conv(x, offset, mask)
