"""The generator's frame encoder: frames and masks -> features at 1/4 resolution."""
from __future__ import annotations

import torch
from torch import Tensor, nn

# parity: model/propainter.py:196-213 — LeakyReLU(0.2) after every encoder convolution.
_SLOPE = 0.2
# Index of the first fusion convolution in ``Encoder.layers``; from there on every convolution
# sees its input interleaved group-wise with the 256-channel features of layer 7.
_FUSION_START = 8


class Encoder(nn.Module):
    """Frames plus two mask channels -> features at 1/4 resolution.

    ``layers`` mirrors the official ``nn.ModuleList`` (checkpoint keys ``encoder.layers.N.*``):
    four plain convolutions (two of stride 2), then five fusion convolutions; before fusion
    convolution ``k >= 1`` the running features are concatenated with the layer-7 features
    group by group (``groups[k]`` groups), so that its grouped convolution sees both.

    Args:
        in_channels: 3 (RGB) + 1 (input mask) + 1 (mask left after image propagation).
        out_channels: feature channels.
        groups: channel groups of the five fusion convolutions.
    """

    def __init__(self, *, in_channels: int = 5, out_channels: int = 128,
                 groups: tuple[int, ...] = (1, 2, 4, 8, 1)) -> None:
        super().__init__()
        self.group = list(groups)
        convs = [
            nn.Conv2d(in_channels, 64, kernel_size=3, stride=2, padding=1),
            nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1),
            nn.Conv2d(128, 256, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(256, 384, kernel_size=3, stride=1, padding=1, groups=groups[0]),
            nn.Conv2d(640, 512, kernel_size=3, stride=1, padding=1, groups=groups[1]),
            nn.Conv2d(768, 384, kernel_size=3, stride=1, padding=1, groups=groups[2]),
            nn.Conv2d(640, 256, kernel_size=3, stride=1, padding=1, groups=groups[3]),
            nn.Conv2d(512, out_channels, kernel_size=3, stride=1, padding=1, groups=groups[4]),
        ]
        layers: list[nn.Module] = []
        for conv in convs:
            layers += [conv, nn.LeakyReLU(_SLOPE, inplace=True)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 5, H, W]`` -> ``[N, C, ceil(H/4), ceil(W/4)]``."""
        out = x
        skip = x
        for index, layer in enumerate(self.layers):
            if index == _FUSION_START:
                skip = out  # [N, 256, h, w]
            if index > _FUSION_START and index % 2 == 0:
                # parity: propainter.py:222-226 interleaves per group: [skip_g0, out_g0, skip_g1, ...].
                groups = self.group[(index - _FUSION_START) // 2]
                n, _, h, w = skip.shape
                out = torch.cat([skip.view(n, groups, -1, h, w), out.view(n, groups, -1, h, w)],
                                dim=2).view(n, -1, h, w)  # [N, C_skip + C_out, h, w]
            out = layer(out)
        return out
