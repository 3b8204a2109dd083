"""Binary mask dilation exactly as the official script prepares its masks, in torch.

parity: inference_propainter.py:95-108 calls ``scipy.ndimage.binary_dilation(mask, iterations=N)``
with scipy's default structuring element, the 3x3 cross (4-connectivity), and zeros beyond the
image border. ``N`` cross dilations grow the mask by a diamond of radius ``N``
(every pixel within L1 distance ``N`` of a mask pixel). With ``N == 0`` the script only
binarises the mask (``binary_mask``, threshold 0.1 on 0..255 values, i.e. any nonzero value).
"""
from __future__ import annotations

from typing import Final

import torch

#: Offsets of the 4-connected cross (scipy.ndimage.generate_binary_structure(2, 1)).
CROSS_NEIGHBOURS: Final = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _or_shifted(out: torch.Tensor, src: torch.Tensor, dy: int, dx: int) -> None:
    """``out |= src`` shifted by ``(dy, dx)``, with zeros entering at the border (in place)."""
    h, w = src.shape[-2:]
    ys_out = slice(max(dy, 0), h + min(dy, 0))
    ys_in = slice(max(-dy, 0), h + min(-dy, 0))
    xs_out = slice(max(dx, 0), w + min(dx, 0))
    xs_in = slice(max(-dx, 0), w + min(-dx, 0))
    out[..., ys_out, xs_out] |= src[..., ys_in, xs_in]


def binary_dilation(mask: torch.Tensor, iterations: int) -> torch.Tensor:
    """Dilate a binary mask ``iterations`` times with the 3x3 cross.

    Equals ``scipy.ndimage.binary_dilation(mask, iterations=iterations)`` (default structure,
    ``border_value=0``) for ``iterations >= 1``, per ``[H, W]`` plane; ``iterations == 0``
    returns the binarised mask (scipy itself would dilate until nothing changes).

    Args:
        mask: ``[..., H, W]`` any dtype; nonzero means "in the mask". Any device.
        iterations: Number of cross dilations, >= 0.

    Returns:
        ``[..., H, W]`` bool on the same device.

    Raises:
        ValueError: ``iterations`` < 0 or ``mask`` has fewer than 2 dimensions.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if mask.ndim < 2:
        raise ValueError(f"mask must be [..., H, W], got shape {list(mask.shape)}")
    current = mask != 0
    for _ in range(iterations):
        grown = current.clone()
        for dy, dx in CROSS_NEIGHBOURS:
            _or_shifted(grown, current, dy, dx)
        current = grown
    return current


def dilate_hole_masks(masks: torch.Tensor, mask_dilation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two masks the pipeline uses: the flow mask and the dilated hole mask.

    parity: inference_propainter.py:239-241 passes ``mask_dilation`` for both
    ``flow_mask_dilates`` and ``mask_dilates``, so in video inpainting the two are the same
    tensor; we return it twice rather than computing it twice.

    Args:
        masks: ``[..., H, W]`` nonzero = hole.
        mask_dilation: Cross dilations, >= 0.

    Returns:
        ``(flow_masks, dilated_masks)``, each ``[..., H, W]`` bool.
    """
    dilated = binary_dilation(masks, mask_dilation)
    return dilated, dilated
