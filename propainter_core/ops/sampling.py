"""Bilinear sampling at pixel coordinates (the look-up RAFT's correlation pyramid uses)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_at_pixels(image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``image`` at pixel positions, zero outside the image.

    Pixel ``(x, y)`` means column ``x`` and row ``y``; integer positions hit pixel centres
    exactly (``align_corners=True`` convention).

    Args:
        image: ``[N, C, H, W]`` float, with ``H >= 2`` and ``W >= 2``.
        coords: ``[N, h, w, 2]`` float pixel positions, last dim ``(x, y)``.

    Returns:
        ``[N, C, h, w]`` sampled values.

    Raises:
        ValueError: If the image is narrower or lower than 2 pixels (the normalisation below
            would divide by zero; the official sampler returns NaN there).
    """
    if image.ndim != 4 or coords.ndim != 4 or coords.shape[-1] != 2:
        raise ValueError(
            f"expected image [N, C, H, W] and coords [N, h, w, 2], got {tuple(image.shape)} "
            f"and {tuple(coords.shape)}")
    height, width = image.shape[-2:]
    if height < 2 or width < 2:
        raise ValueError(f"cannot sample a {height}x{width} map: it needs at least 2x2 pixels")
    x, y = coords.split([1, 1], dim=-1)
    # parity: RAFT/utils/utils.py:bilinear_sampler normalises as 2 * x / (W - 1) - 1
    x = 2 * x / (width - 1) - 1
    y = 2 * y / (height - 1) - 1
    grid = torch.cat([x, y], dim=-1)  # [N, h, w, 2]
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
