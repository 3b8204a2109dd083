"""All-pairs correlation pyramid and its windowed look-up (RAFT's cost volume)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.sampling import sample_at_pixels


class CorrelationPyramid(nn.Module):
    """Builds the 4-level all-pairs correlation volume and samples windows from it.

    It has no weights; it is a module so that ``RAFT`` receives it as a part (a test can
    swap in a smaller one) and so that its settings show in ``print(model)``.

    Args:
        levels: Pyramid levels; level ``i`` average-pools the second image's grid by ``2**i``.
        radius: Window radius; each level contributes ``(2 * radius + 1)^2`` channels.
    """

    def __init__(self, *, levels: int = 4, radius: int = 4) -> None:
        super().__init__()
        self.levels = levels
        self.radius = radius

    @property
    def channels(self) -> int:
        """Channels of one look-up: ``levels * (2 * radius + 1)^2``."""
        return self.levels * (2 * self.radius + 1) ** 2

    def extra_repr(self) -> str:
        return f"levels={self.levels}, radius={self.radius}"

    def build(self, features1: torch.Tensor, features2: torch.Tensor) -> list[torch.Tensor]:
        """Correlate every position of image 1 with every position of image 2.

        Args:
            features1: ``[B, C, h, w]`` matching features of the first images.
            features2: ``[B, C, h, w]`` matching features of the second images.

        Returns:
            ``levels`` tensors ``[B*h*w, 1, h / 2**i, w / 2**i]``: for each position of
            image 1, its dot products with image 2's (pooled) grid, divided by ``sqrt(C)``.
        """
        batch, channels, height, width = features1.shape
        f1 = features1.reshape(batch, channels, height * width)  # [B, C, h*w]
        f2 = features2.reshape(batch, channels, height * width)  # [B, C, h*w]
        corr = torch.matmul(f1.transpose(1, 2), f2)  # [B, h*w, h*w]
        # parity: RAFT/corr.py:62 divides by sqrt(dim) = 16 for 256 channels (in place: the
        # same numbers without a second volume-sized buffer)
        corr = corr.div_(math.sqrt(channels))
        corr = corr.reshape(batch * height * width, 1, height, width)  # [B*h*w, 1, h, w]
        pyramid = [corr]
        for _ in range(self.levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            pyramid.append(corr)
        return pyramid

    def _window_offsets(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        r = self.radius
        steps = torch.arange(-r, r + 1, device=device, dtype=dtype)
        rows, cols = torch.meshgrid(steps, steps, indexing="ij")
        # parity: RAFT/corr.py:38 stacks meshgrid(dy, dx) as (dy, dx) and adds it to (x, y):
        # the window's ROW index moves x and its column index moves y. The checkpoint's
        # `convc1` expects channels in this order, so we keep it.
        return torch.stack([rows, cols], dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)

    def lookup(self, pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        """Sample a ``(2r+1) x (2r+1)`` window around ``coords`` at every level.

        Args:
            pyramid: Output of :meth:`build` for a batch of ``B`` pairs.
            coords: ``[B, 2, h, w]`` current positions in image 2 (``x``, ``y``) of each
                image-1 position, in flow-grid pixels.

        Returns:
            ``[B, levels * (2r+1)^2, h, w]`` correlation features.
        """
        batch, _, height, width = coords.shape
        centres = coords.permute(0, 2, 3, 1).reshape(batch * height * width, 1, 1, 2)  # [B*h*w, 1, 1, 2]
        offsets = self._window_offsets(coords.device, coords.dtype)
        samples = []
        for level, corr in enumerate(pyramid):
            window = centres / 2**level + offsets  # [B*h*w, 2r+1, 2r+1, 2]
            sampled = sample_at_pixels(corr, window)  # [B*h*w, 1, 2r+1, 2r+1]
            samples.append(sampled.view(batch, height, width, -1))  # [B, h, w, (2r+1)^2]
        out = torch.cat(samples, dim=-1)  # [B, h, w, levels*(2r+1)^2]
        return out.permute(0, 3, 1, 2).contiguous()  # [B, levels*(2r+1)^2, h, w]
