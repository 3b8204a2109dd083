"""The generator's decoder: features at 1/4 resolution -> RGB logits at full resolution."""
from __future__ import annotations

from torch import Tensor, nn

from ..ops.upsample import Upsample2xConv

# parity: model/propainter.py:271-278 — LeakyReLU(0.2) between the decoder's convolutions.
_SLOPE = 0.2


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
