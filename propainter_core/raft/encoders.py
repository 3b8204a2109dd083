"""RAFT's two image encoders: matching features (``fnet``) and context (``cnet``).

Both are the same residual CNN that downsamples by 8; they differ in normalisation only:
instance norm without parameters for the matching features, batch norm (running statistics
from the checkpoint) for the context. Attribute names mirror the official module tree
(``RAFT/extractor.py:BasicEncoder``, ``ResidualBlock``) because they are the checkpoint keys.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormKind = Literal["instance", "batch"]


def _norm_layer(kind: NormKind, channels: int) -> nn.Module:
    if kind == "instance":
        # parity: RAFT/extractor.py:36 nn.InstanceNorm2d(planes): affine=False, no checkpoint keys
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection; a strided block also projects the skip.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        norm: ``"instance"`` or ``"batch"``.
        stride: Stride of the first convolution (1 or 2).
    """

    def __init__(self, *, in_channels: int, out_channels: int, norm: NormKind, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.norm1 = _norm_layer(norm, out_channels)
        self.norm2 = _norm_layer(norm, out_channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1:
            # parity: RAFT/extractor.py:44-52 registers ONE norm twice, as `norm3` and as
            # `downsample.1`; the checkpoint carries both names (10 alias keys in `cnet`),
            # so we share the module the same way and every file key loads.
            self.norm3 = _norm_layer(norm, out_channels)
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, H, W] -> [N, C_out, H / stride, W / stride]``."""
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(skip + y)


class ConvEncoder(nn.Module):
    """7x7 stem (stride 2), three residual stages (strides 1, 2, 2), 1x1 output projection.

    Args:
        out_channels: Channels of the output map (256 for ``fnet``, 256 = hidden + context
            for ``cnet``).
        norm: ``"instance"`` (``fnet``) or ``"batch"`` (``cnet``).
        widths: Channels of the stem and the three stages, ``(64, 96, 128)`` officially.
    """

    def __init__(self, *, out_channels: int, norm: NormKind,
                 widths: tuple[int, int, int] = (64, 96, 128)) -> None:
        super().__init__()
        stem, mid, last = widths
        self.norm1 = _norm_layer(norm, stem)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3)
        self.layer1 = self._stage(stem, stem, norm, stride=1)
        self.layer2 = self._stage(stem, mid, norm, stride=2)
        self.layer3 = self._stage(mid, last, norm, stride=2)
        self.conv2 = nn.Conv2d(last, out_channels, kernel_size=1)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, norm: NormKind, *, stride: int) -> nn.Sequential:
        return nn.Sequential(
            ResidualBlock(in_channels=in_channels, out_channels=out_channels, norm=norm, stride=stride),
            ResidualBlock(in_channels=out_channels, out_channels=out_channels, norm=norm, stride=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images.

        Args:
            images: ``[N, 3, H, W]`` float in [-1, 1], H and W multiples of 8.

        Returns:
            ``[N, out_channels, H / 8, W / 8]``. Each sample is encoded on its own (instance
            norm and eval-mode batch norm are per-sample), so batching frames together gives
            the same features as encoding them one call at a time.
        """
        x = F.relu(self.norm1(self.conv1(images)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.conv2(x)
