"""The generator's decoder: features at 1/4 resolution -> RGB logits at full resolution."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# parity: model/propainter.py:271-278 — LeakyReLU(0.2) between the decoder's convolutions.
_SLOPE = 0.2


class Upsample2xConv(nn.Module):
    """Bilinear 2x upsampling (``align_corners=True``) followed by a 3x3 convolution.

    The attribute ``conv`` is the official ``deconv.conv`` (keys ``decoder.0.conv.*``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C_in, h, w]`` -> ``[N, C_out, 2h, 2w]``."""
        # parity: model/propainter.py:245-249.
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv(x)


def build_decoder(channels: int = 128) -> nn.Sequential:
    """Features ``[N, C, h, w]`` -> RGB logits ``[N, 3, 4h, 4w]`` (tanh is applied by the caller).

    A ``Sequential`` so that the checkpoint keys are ``decoder.{0,2,4,6}.*`` as in the original.
    """
    return nn.Sequential(
        Upsample2xConv(channels, 128),
        nn.LeakyReLU(_SLOPE, inplace=True),
        nn.Conv2d(128, 64, kernel_size=3, stride=1, padding=1),
        nn.LeakyReLU(_SLOPE, inplace=True),
        Upsample2xConv(64, 64),
        nn.LeakyReLU(_SLOPE, inplace=True),
        nn.Conv2d(64, 3, kernel_size=3, stride=1, padding=1),
    )
