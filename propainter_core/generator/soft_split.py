"""Soft split (overlapping patches -> tokens) and soft composition (tokens -> feature map)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def token_grid_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                    padding: tuple[int, int]) -> tuple[int, int]:
    """Patches ``(rows, cols)`` that ``unfold`` cuts from a ``size`` map."""
    # parity: model/modules/sparse_transformer.py:20-23 (the usual unfold output size).
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding))  # type: ignore[return-value]


class SoftSplit(nn.Module):
    """Cut features into overlapping ``k x k`` patches and embed each patch as one token.

    Args:
        channels: feature channels ``C``.
        hidden: token width.
        kernel, stride, padding: patch geometry (``nn.Unfold`` semantics).
    """

    def __init__(self, channels: int, hidden: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = kernel
        self.stride = stride
        self.padding = padding
        self.embedding = nn.Linear(channels * kernel[0] * kernel[1], hidden)

    def forward(self, features: Tensor, batch: int) -> Tensor:
        """``[B*T, C, h, w]`` -> tokens ``[B, T, rows, cols, hidden]``."""
        rows, cols = token_grid_size(tuple(features.shape[-2:]), self.kernel_size, self.stride, self.padding)
        patches = F.unfold(features, self.kernel_size, padding=self.padding, stride=self.stride)
        tokens = self.embedding(patches.transpose(1, 2))  # [B*T, rows*cols, hidden]
        return tokens.view(batch, -1, rows, cols, tokens.shape[-1])  # [B, T, rows, cols, hidden]


class SoftComp(nn.Module):
    """Project tokens back to patches, sum the overlapping patches, then a 3x3 convolution.

    Args:
        channels: feature channels ``C``.
        hidden: token width.
        kernel, stride, padding: patch geometry (``nn.Fold`` semantics).
    """

    def __init__(self, channels: int, hidden: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = kernel
        self.stride = stride
        self.padding = padding
        self.embedding = nn.Linear(hidden, channels * kernel[0] * kernel[1])
        self.bias_conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, tokens: Tensor, output_size: tuple[int, int]) -> Tensor:
        """Tokens ``[B, T, rows, cols, hidden]`` -> features ``[B*T, C, h, w]``.

        Each frame is composed on its own, so callers may pass any subset of frames.
        """
        batch, frames, rows, cols, hidden = tokens.shape
        patches = self.embedding(tokens.reshape(batch * frames, rows * cols, hidden))  # [B*T, L, C*k*k]
        # parity: sparse_transformer.py:53-61 — a plain sum over overlaps (no normalisation here).
        features = F.fold(patches.transpose(1, 2), output_size, self.kernel_size, padding=self.padding,
                          stride=self.stride)  # [B*T, C, h, w]
        return self.bias_conv(features)
