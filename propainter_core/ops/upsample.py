"""The 2x upsampling convolution both ProPainter decoders use."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Upsample2xConv(nn.Module):
    """Bilinear 2x upsampling (``align_corners=True``) followed by a 3x3 convolution.

    The attribute ``conv`` is the official ``deconv.conv``: its keys are
    ``decoder2.2.conv.*`` in the flow-completion checkpoint and ``decoder.0.conv.*`` in the
    generator's.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C_in, h, w]`` -> ``[N, C_out, 2h, 2w]``."""
        # parity: model/recurrent_flow_completion.py:121-125 and model/propainter.py:245-249
        # (the same `deconv` class twice, align_corners=True in both).
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv(x)
