"""Mask clean-up for video: grow/shrink, hole fill, island removal, feathering, temporal smoothing.

ComfyUI-free. Every function takes masks ``[T, H, W]`` in 0..1 (1 = selected) on any device and
returns the same dtype on the same device. Grey-level morphology (max/min over a flat structuring
element) and Gaussian blurs run in torch on the input's device; hole filling and island removal
need connected components and run per frame with OpenCV on the CPU (a binary mask is small).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

MaskShape = Literal["disk", "diamond", "square"]
MASK_SHAPES: tuple[MaskShape, ...] = ("disk", "diamond", "square")

# A Gaussian is cut at this many sigmas (the weight beyond is below 0.3 %).
GAUSSIAN_TRUNCATE = 3.0
# Blurred values this close to 0 or 1 are rounded to exactly 0 or 1 (float rounding of the kernel sum).
SNAP_EPS = 1e-6
# Morphology works on this many frames at a time to bound its temporary tensors.
FRAME_CHUNK = 16
# Soft-mask values at or below one 8-bit step count as "not selected" for the hard mask.
HARD_MASK_THRESHOLD = 1.0 / 255.0
# Above this the binary mask used for hole filling and island removal counts a pixel as selected.
BINARY_THRESHOLD = 0.5


@dataclass(frozen=True)
class MaskRefineSettings:
    """Everything :func:`refine_masks` does, in the order it does it."""

    fill_holes: bool = False
    min_island_area: int = 0          # pixels; 8-connected components smaller than this are dropped
    grow: int = 0                     # pixels; negative shrinks
    shape: MaskShape = "disk"
    temporal_sigma: float = 0.0       # frames
    feather: float = 0.0              # pixels (Gaussian sigma)
    guide_radius: int = 8             # pixels; used only when a guide image is given
    guide_eps: float = 1e-3           # guided-filter regulariser, in (0..1 intensity)^2
    invert: bool = False


def row_half_widths(radius: int, shape: MaskShape) -> list[int]:
    """Half-width of each row of the structuring element, for ``dy = -radius .. radius``.

    Every shape here is symmetric and each of its rows is one centred run of pixels, so
    ``row_half_widths`` describes it fully. The disk holds the pixels whose centres lie within
    ``radius + 0.5`` of the centre (so radius 2 is rounder than the diamond of radius 2).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    widths = []
    for dy in range(-radius, radius + 1):
        if shape == "square":
            widths.append(radius)
        elif shape == "diamond":
            widths.append(radius - abs(dy))
        elif shape == "disk":
            widths.append(int(math.floor(math.sqrt((radius + 0.5) ** 2 - dy * dy))))
        else:
            raise ValueError(f"unknown shape {shape!r}; expected one of {MASK_SHAPES}")
    return widths


def structuring_element(radius: int, shape: MaskShape) -> torch.Tensor:
    """The structuring element as a bool tensor ``[2r+1, 2r+1]`` (for tests and documentation)."""
    size = 2 * radius + 1
    element = torch.zeros(size, size, dtype=torch.bool)
    for row, half in enumerate(row_half_widths(radius, shape)):
        element[row, radius - half: radius + half + 1] = True
    return element


def _shift(x: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """``out[i] = x[i - offset]`` along ``dim``, zero where that falls outside."""
    if offset == 0:
        return x
    out = torch.zeros_like(x)
    length = x.shape[dim]
    if abs(offset) >= length:
        return out
    if offset > 0:
        out.narrow(dim, offset, length - offset).copy_(x.narrow(dim, 0, length - offset))
    else:
        out.narrow(dim, 0, length + offset).copy_(x.narrow(dim, -offset, length + offset))
    return out


def dilate(masks: torch.Tensor, radius: int, shape: MaskShape = "disk") -> torch.Tensor:
    """Grey-level dilation: each pixel becomes the maximum over the structuring element.

    Runs in ``O(radius)`` whole-tensor steps whatever the shape: the row maxima of every width
    are built by ``h_w[i] = max(h_{w-1}[i-1], h_{w-1}[i], h_{w-1}[i+1])`` and each row of the element is one
    of them shifted vertically. Outside the frame counts as 0 (nothing selected).

    Args:
        masks: ``[T, H, W]`` values >= 0.
        radius: pixels, >= 0.
    Returns:
        ``[T, H, W]`` same dtype and device.
    """
    if radius <= 0:
        return masks.clone()
    if masks.shape[0] > FRAME_CHUNK:  # bound the temporaries (a few [chunk, H, W] tensors)
        return torch.cat([dilate(part, radius, shape) for part in masks.split(FRAME_CHUNK)])
    widths = row_half_widths(radius, shape)
    rows_by_width: dict[int, list[int]] = {}
    for row, half in enumerate(widths):
        rows_by_width.setdefault(half, []).append(row - radius)
    out = torch.zeros_like(masks)
    row_max = masks  # h_0
    for half in range(max(widths) + 1):
        if half > 0:
            row_max = torch.maximum(row_max, torch.maximum(_shift(row_max, 1, -1), _shift(row_max, -1, -1)))
        for dy in rows_by_width.get(half, []):
            torch.maximum(out, _shift(row_max, dy, -2), out=out)
    return out


def erode(masks: torch.Tensor, radius: int, shape: MaskShape = "disk") -> torch.Tensor:
    """Grey-level erosion (minimum over the element) of masks in 0..1.

    Outside the frame counts as 1, so a subject touching the frame edge stays attached to it.
    """
    return 1.0 - dilate(1.0 - masks, radius, shape)


def grow_or_shrink(masks: torch.Tensor, pixels: int, shape: MaskShape = "disk") -> torch.Tensor:
    """Dilate by ``pixels`` (> 0) or erode by ``-pixels`` (< 0); 0 returns a copy."""
    if pixels >= 0:
        return dilate(masks, pixels, shape)
    return erode(masks, -pixels, shape)


def _binary_frames(masks: torch.Tensor) -> np.ndarray:
    return (masks.detach().float().cpu().numpy() > BINARY_THRESHOLD).astype(np.uint8)  # [T, H, W]


def fill_holes(masks: torch.Tensor) -> torch.Tensor:
    """Set to 1 every unselected region that does not touch the frame edge.

    A hole is a 4-connected component of unselected pixels (the dual of the 8-connected
    selection), judged on the mask binarised at 0.5. Other pixels keep their values.
    """
    binary = _binary_frames(masks)
    holes = np.zeros_like(binary, dtype=bool)
    for t, frame in enumerate(binary):
        count, labels = cv2.connectedComponents(1 - frame, connectivity=4)
        edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        is_hole = np.ones(count, dtype=bool)
        is_hole[0] = False  # label 0 is the selection itself
        is_hole[edge_labels] = False
        holes[t] = is_hole[labels]
    hole_mask = torch.from_numpy(holes).to(masks.device)
    return torch.where(hole_mask, torch.ones_like(masks), masks)


def remove_islands(masks: torch.Tensor, min_area: int) -> torch.Tensor:
    """Set to 0 every 8-connected selected component smaller than ``min_area`` pixels."""
    if min_area <= 1:
        return masks.clone()
    binary = _binary_frames(masks)
    small = np.zeros_like(binary, dtype=bool)
    for t, frame in enumerate(binary):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(frame, connectivity=8)
        too_small = stats[:, cv2.CC_STAT_AREA] < min_area
        too_small[0] = False  # background
        small[t] = too_small[labels]
    small_mask = torch.from_numpy(small).to(masks.device)
    return torch.where(small_mask, torch.zeros_like(masks), masks)


def gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian ``[2r+1]`` with ``r = ceil(3 * sigma)``."""
    radius = max(int(math.ceil(GAUSSIAN_TRUNCATE * sigma)), 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def blur_along(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian blur along one dimension with edge-replicating padding (``sigma <= 0``: copy)."""
    if sigma <= 0:
        return x.clone()
    kernel = gaussian_kernel(sigma, x.dtype, x.device)
    radius = kernel.numel() // 2
    moved = x.movedim(dim, -1)
    lead_shape = moved.shape[:-1]
    rows = moved.reshape(-1, 1, moved.shape[-1])  # [N, 1, L]
    rows = F.pad(rows, (radius, radius), mode="replicate")
    blurred = F.conv1d(rows, kernel.view(1, 1, -1))  # [N, 1, L]
    return blurred.reshape(*lead_shape, -1).movedim(-1, dim)


def snap_ends(masks: torch.Tensor) -> torch.Tensor:
    """Round values within ``SNAP_EPS`` of 0 or 1 to exactly 0 or 1 (blur rounding leaves 0.99999994)."""
    masks = torch.where(masks >= 1.0 - SNAP_EPS, torch.ones_like(masks), masks)
    return torch.where(masks <= SNAP_EPS, torch.zeros_like(masks), masks)


def feather(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Spatial Gaussian blur ``[T, H, W]`` with sigma in pixels (the frame edge is replicated).

    Fully selected interiors stay exactly 1 and far background exactly 0 (:func:`snap_ends`).
    """
    if sigma <= 0:
        return masks.clone()
    return snap_ends(blur_along(blur_along(masks, sigma, -1), sigma, -2))


def smooth_temporally(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur across frames (sigma in frames) so masks do not jitter; first/last repeated."""
    if masks.shape[0] < 2 or sigma <= 0:
        return masks.clone()
    return snap_ends(blur_along(masks, sigma, 0))


def refine_with_guide(masks: torch.Tensor, guide: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Edge-aware refinement: a guided filter (He et al.) with the frame as guide.

    Soft edges then follow the image's own edges (hair, fur). Uses ``kornia.filters.guided_blur``.

    Args:
        masks: ``[T, H, W]``. guide: ``[T or 1, H, W, 3]`` in 0..1, same size.
        radius: window radius in pixels. eps: regulariser in squared 0..1 intensity units.
    """
    import kornia.filters

    if radius <= 0:
        return masks.clone()
    guide = guide.to(device=masks.device, dtype=torch.float32).permute(0, 3, 1, 2)  # [T, 3, H, W]
    if guide.shape[0] == 1 and masks.shape[0] > 1:
        guide = guide.expand(masks.shape[0], -1, -1, -1)
    out = torch.empty_like(masks)
    for t in range(masks.shape[0]):  # frame by frame: the filter keeps several [3, 3, H, W] temporaries
        source = masks[t].float()[None, None]  # [1, 1, H, W]
        refined = kornia.filters.guided_blur(guide[t: t + 1], source, 2 * radius + 1, eps)
        out[t] = refined[0, 0].to(masks.dtype)
    return out.clamp_(0.0, 1.0)


def refine_masks(masks: torch.Tensor, settings: MaskRefineSettings,
                 guide: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply every step of ``settings`` and return ``(soft, hard)``.

    Order: fill holes, drop islands, grow/shrink, temporal smoothing, feather, guided refinement,
    invert. ``hard`` is 1 wherever ``soft`` is above one 8-bit step (1/255): every pixel that a
    composite with ``soft`` can change, which is the region an inpainter must fill.

    Args:
        masks: ``[T, H, W]`` 0..1, any float dtype and device.
        guide: optional ``[T or 1, H, W, 3]`` frames for the edge-aware refinement.
    Returns:
        soft ``[T, H, W]`` in 0..1 and hard ``[T, H, W]`` in {0, 1}, both in ``masks``' dtype and device.
    """
    dtype = masks.dtype
    work = masks.to(torch.float64 if dtype == torch.float64 else torch.float32)
    if settings.fill_holes:
        work = fill_holes(work)
    if settings.min_island_area > 1:
        work = remove_islands(work, settings.min_island_area)
    if settings.grow != 0:
        work = grow_or_shrink(work, settings.grow, settings.shape)
    if settings.temporal_sigma > 0:
        work = smooth_temporally(work, settings.temporal_sigma)
    if settings.feather > 0:
        work = feather(work, settings.feather)
    if guide is not None:
        work = refine_with_guide(work, guide, settings.guide_radius, settings.guide_eps)
    work = work.clamp(0.0, 1.0)
    if settings.invert:
        work = 1.0 - work
    hard = (work > HARD_MASK_THRESHOLD).to(work.dtype)
    return work.to(dtype), hard.to(dtype)


def mask_overlay(masks: torch.Tensor, frames: torch.Tensor | None, opacity: float = 0.5) -> torch.Tensor:
    """A preview: the mask in red over the frames (or over mid-grey without frames).

    Args:
        masks: ``[T, H, W]``. frames: ``[T or 1, H, W, 3]`` or None.
    Returns:
        ``[T, H, W, 3]`` float32 on the CPU.
    """
    masks = masks.detach().float().cpu()
    if frames is None:
        base = torch.full((*masks.shape, 3), 0.5)
    else:
        base = frames.detach().float().cpu().expand(masks.shape[0], -1, -1, -1)
    red = torch.tensor([1.0, 0.1, 0.1])
    alpha = (masks * opacity).unsqueeze(-1)  # [T, H, W, 1]
    return (base * (1.0 - alpha) + red * alpha).clamp(0.0, 1.0)
