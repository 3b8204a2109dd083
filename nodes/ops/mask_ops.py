"""Mask clean-up for video: grow/shrink, hole fill, island removal, feathering, temporal smoothing.

ComfyUI-free. Every function takes masks ``[T, H, W]`` in 0..1 (1 = selected) on any device and
returns the same dtype on the same device. Grey-level morphology (max/min over a flat structuring
element) and Gaussian blurs run in torch on the input's device; hole filling and island removal
need connected components and run per frame with OpenCV on the CPU (a binary mask is small).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

#: Raises to stop (the node passes ComfyUI's interrupt check); polled per frame and per step.
CancelCheck = Callable[[], None]

MaskShape = Literal["disk", "diamond", "square"]
MASK_SHAPES: tuple[MaskShape, ...] = ("disk", "diamond", "square")

# A Gaussian is cut at this many sigmas (the weight beyond is below 0.3 %).
GAUSSIAN_TRUNCATE = 3.0
# Blurred values this close to 0 or 1 are rounded to exactly 0 or 1 (float rounding of the kernel sum).
SNAP_EPS = 1e-6
# Morphology works on this many frames at a time to bound its temporary tensors.
FRAME_CHUNK = 16
# Temporal smoothing blurs bands of rows of about this many pixels (all frames) at a time.
ROW_BAND_PIXELS = 1 << 22
# Soft-mask values at or below one 8-bit step count as "not selected" for the hard mask.
HARD_MASK_THRESHOLD = 1.0 / 255.0
# Above this the binary mask used for hole filling and island removal counts a pixel as selected.
BINARY_THRESHOLD = 0.5


def _poll(check: CancelCheck | None) -> None:
    if check is not None:
        check()


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


def nonzero_box(masks: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the bounding box of the nonzero pixels of ``[..., H, W]`` masks (all
    leading frames together), or None when every pixel is 0."""
    selected = (masks != 0).reshape(-1, *masks.shape[-2:]).any(dim=0)  # [H, W]
    rows = torch.nonzero(selected.any(dim=1))[:, 0]
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(selected.any(dim=0))[:, 0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def on_support(masks: torch.Tensor, margin: int, operation: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``operation(masks)``, computed only on the box around the nonzero pixels.

    For an operation whose value at a pixel depends only on the pixels within ``margin`` of it
    and is 0 where they are all 0 (a dilation of that radius, a blur of that reach), the result
    is the same as running it on the whole frame: the box is the nonzero pixels' bounding box
    (over all of ``masks``' frames) grown by ``margin``, and everything outside it stays 0. An
    object filling a small part of a 1080p frame then costs what its box costs.

    Args:
        masks: ``[T, H, W]``, values >= 0. margin: the operation's reach in pixels.
    """
    box = nonzero_box(masks)
    if box is None:
        return operation(masks)  # nothing selected: cheap either way, and exactly what it gives
    height, width = masks.shape[-2:]
    y0, y1 = max(0, box[0] - margin), min(height, box[1] + margin)
    x0, x1 = max(0, box[2] - margin), min(width, box[3] + margin)
    if (y1 - y0) * (x1 - x0) > 0.7 * height * width:
        return operation(masks)
    out = torch.zeros_like(masks)
    out[:, y0:y1, x0:x1] = operation(masks[:, y0:y1, x0:x1].contiguous())
    return out


def dilate(masks: torch.Tensor, radius: int, shape: MaskShape = "disk",
           check: CancelCheck | None = None) -> torch.Tensor:
    """Grey-level dilation: each pixel becomes the maximum over the structuring element.

    Runs in ``O(radius)`` whole-tensor steps whatever the shape: the row maxima of every width
    are built by ``h_w[i] = max(h_{w-1}[i-1], h_{w-1}[i], h_{w-1}[i+1])`` and each row of the element is one
    of them shifted vertically. Outside the frame counts as 0 (nothing selected).

    Args:
        masks: ``[T, H, W]`` values >= 0.
        radius: pixels, >= 0.
        check: polled before every step (a large radius is hundreds of whole-tensor steps).
    Returns:
        ``[T, H, W]`` same dtype and device.
    """
    if radius <= 0:
        return masks.clone()
    if masks.shape[0] > FRAME_CHUNK:  # bound the temporaries (a few [chunk, H, W] tensors)
        return torch.cat([dilate(part, radius, shape, check) for part in masks.split(FRAME_CHUNK)])
    return on_support(masks, radius, lambda box: _dilate_box(box, radius, shape, check))


def _dilate_box(masks: torch.Tensor, radius: int, shape: MaskShape, check: CancelCheck | None) -> torch.Tensor:
    widths = row_half_widths(radius, shape)
    rows_by_width: dict[int, list[int]] = {}
    for row, half in enumerate(widths):
        rows_by_width.setdefault(half, []).append(row - radius)
    out = torch.zeros_like(masks)
    row_max = masks  # h_0
    for half in range(max(widths) + 1):
        _poll(check)
        if half > 0:
            row_max = torch.maximum(row_max, torch.maximum(_shift(row_max, 1, -1), _shift(row_max, -1, -1)))
        for dy in rows_by_width.get(half, []):
            torch.maximum(out, _shift(row_max, dy, -2), out=out)
    return out


def erode(masks: torch.Tensor, radius: int, shape: MaskShape = "disk",
          check: CancelCheck | None = None) -> torch.Tensor:
    """Grey-level erosion (minimum over the element) of masks in 0..1.

    Outside the frame counts as 1, so a subject touching the frame edge stays attached to it.
    """
    return 1.0 - dilate(1.0 - masks, radius, shape, check)


def grow_or_shrink(masks: torch.Tensor, pixels: int, shape: MaskShape = "disk",
                   check: CancelCheck | None = None) -> torch.Tensor:
    """Dilate by ``pixels`` (> 0) or erode by ``-pixels`` (< 0); 0 returns a copy."""
    if pixels >= 0:
        return dilate(masks, pixels, shape, check)
    return erode(masks, -pixels, shape, check)


def _binary_frames(masks: torch.Tensor) -> np.ndarray:
    return (masks.detach().float().cpu().numpy() > BINARY_THRESHOLD).astype(np.uint8)  # [T, H, W]


def fill_holes(masks: torch.Tensor, check: CancelCheck | None = None) -> torch.Tensor:
    """Set to 1 every unselected region that does not touch the frame edge.

    A hole is a 4-connected component of unselected pixels (the dual of the 8-connected
    selection), judged on the mask binarised at 0.5. Other pixels keep their values.
    """
    binary = _binary_frames(masks)
    holes = np.zeros_like(binary, dtype=bool)
    for t, frame in enumerate(binary):
        _poll(check)
        count, labels = cv2.connectedComponents(1 - frame, connectivity=4)
        edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        is_hole = np.ones(count, dtype=bool)
        is_hole[0] = False  # label 0 is the selection itself
        is_hole[edge_labels] = False
        holes[t] = is_hole[labels]
    hole_mask = torch.from_numpy(holes).to(masks.device)
    return torch.where(hole_mask, torch.ones_like(masks), masks)


def remove_islands(masks: torch.Tensor, min_area: int, check: CancelCheck | None = None) -> torch.Tensor:
    """Set to 0 every 8-connected selected component smaller than ``min_area`` pixels."""
    if min_area <= 1:
        return masks.clone()
    binary = _binary_frames(masks)
    small = np.zeros_like(binary, dtype=bool)
    for t, frame in enumerate(binary):
        _poll(check)
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


def feather(masks: torch.Tensor, sigma: float, check: CancelCheck | None = None) -> torch.Tensor:
    """Spatial Gaussian blur ``[T, H, W]`` with sigma in pixels (the frame edge is replicated).

    Fully selected interiors stay exactly 1 and far background exactly 0 (:func:`snap_ends`).
    Runs frame by frame (each frame is independent), polling ``check`` before each.
    """
    if sigma <= 0:
        return masks.clone()
    reach = max(int(math.ceil(GAUSSIAN_TRUNCATE * sigma)), 1)  # the kernel's radius
    out = torch.empty_like(masks)
    for t in range(masks.shape[0]):
        _poll(check)
        out[t: t + 1] = on_support(masks[t: t + 1], reach,
                                   lambda box: blur_along(blur_along(box, sigma, -1), sigma, -2))
    return snap_ends(out)


def smooth_temporally(masks: torch.Tensor, sigma: float, check: CancelCheck | None = None) -> torch.Tensor:
    """Gaussian blur across frames (sigma in frames) so masks do not jitter; first/last repeated.

    Runs in bands of rows (each row's blur is independent), polling ``check`` before each.
    """
    if masks.shape[0] < 2 or sigma <= 0:
        return masks.clone()
    out = torch.empty_like(masks)
    band = max(1, ROW_BAND_PIXELS // max(1, masks.shape[0] * masks.shape[2]))
    for top in range(0, masks.shape[1], band):
        _poll(check)
        out[:, top: top + band] = blur_along(masks[:, top: top + band], sigma, 0)
    return snap_ends(out)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the ``(2r+1) x (2r+1)`` window of every pixel, mirrored at the frame edge.

    Built from running sums, so the cost does not depend on the radius (a convolution with a
    257-pixel window took minutes per frame). The border is mirrored without repeating the edge
    pixel (``reflect``), as ``kornia.filters.box_blur`` does by default.

    Args:
        x: ``[N, C, H, W]`` float. radius: ``0 <= radius < min(H, W)`` (mirroring needs it).
    Returns:
        ``[N, C, H, W]`` in ``x``'s dtype.
    """
    if radius <= 0:
        return x.clone()
    size = 2 * radius + 1
    # sums of up to 8192 values in 0..1: float64 keeps them exact enough; MPS has no float64
    acc = torch.float32 if x.device.type == "mps" else torch.float64
    sums = F.pad(x, (radius, radius, radius, radius), mode="reflect").to(acc)  # [N, C, H+2r, W+2r]
    for dim in (-1, -2):
        running = sums.cumsum(dim)
        length = running.shape[dim] - size + 1
        # window sum at i: running[i + size - 1] - running[i - 1] (nothing before the first)
        sums = running.narrow(dim, size - 1, length).clone()
        sums.narrow(dim, 1, length - 1).sub_(running.narrow(dim, 0, length - 1))
    return sums.div_(size * size).to(x.dtype)


def guided_filter(guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float,
                  check: CancelCheck | None = None) -> torch.Tensor:
    """The colour guided filter of He, Sun and Tang (2013) on one frame.

    ``q = mean(a) . I + mean(b)`` where, in every window, ``a = (Sigma_I + eps Id)^-1 cov(I, p)``
    and ``b = mean(p) - a . mean(I)``; the same result as ``kornia.filters.guided_blur`` with a
    ``2r+1`` kernel (reflect border), in time independent of the radius. The 3x3 systems are
    solved in closed form (adjugate over determinant; the matrix is symmetric positive definite).

    Args:
        guide: ``[3, H, W]`` float in 0..1. source: ``[H, W]`` float. radius: ``< min(H, W)``.
        check: polled between the steps (a large frame takes a while even so).
    Returns:
        ``[H, W]`` float32.
    """
    acc = torch.float32 if guide.device.type == "mps" else torch.float64
    r, g, b = guide.to(acc).unbind(0)
    p = source.to(acc)
    planes = torch.stack([r, g, b, p, r * p, g * p, b * p, r * r, r * g, r * b, g * g, g * b, b * b])
    means = box_mean(planes[None], radius)[0]  # [13, H, W]
    del planes
    _poll(check)
    mr, mg, mb, mp = means[0], means[1], means[2], means[3]
    cr, cg, cb = means[4] - mr * mp, means[5] - mg * mp, means[6] - mb * mp  # cov(I, p)
    rr, rg, rb = means[7] - mr * mr + eps, means[8] - mr * mg, means[9] - mr * mb
    gg, gb, bb = means[10] - mg * mg + eps, means[11] - mg * mb, means[12] - mb * mb + eps
    del means
    # the differences above need the wide type (variances far below eps); the rest does not
    mr, mg, mb, mp, cr, cg, cb, rr, rg, rb, gg, gb, bb = (
        x.float() for x in (mr, mg, mb, mp, cr, cg, cb, rr, rg, rb, gg, gb, bb))
    r, g, b = guide.float().unbind(0)
    _poll(check)
    # inverse of the symmetric [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]] by its adjugate
    i_rr, i_rg, i_rb = gg * bb - gb * gb, rb * gb - rg * bb, rg * gb - rb * gg
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    a_r = (i_rr * cr + i_rg * cg + i_rb * cb) / det
    a_g = (i_rg * cr + i_gg * cg + i_gb * cb) / det
    a_b = (i_rb * cr + i_gb * cg + i_bb * cb) / det
    offset = mp - a_r * mr - a_g * mg - a_b * mb
    _poll(check)
    smooth = box_mean(torch.stack([a_r, a_g, a_b, offset])[None], radius)[0]  # [4, H, W]
    return (smooth[0] * r + smooth[1] * g + smooth[2] * b + smooth[3]).to(torch.float32)


def usable_guide_radius(radius: int, height: int, width: int) -> int:
    """The guided-filter radius used on ``height x width`` frames: at most ``min(H, W) - 1``.

    The window is mirrored at the frame edge, which needs the radius below both sides; a larger
    radius would only average the mirrored copy again, so it is clamped (the node logs it).
    """
    return max(0, min(int(radius), height - 1, width - 1))


def refine_with_guide(masks: torch.Tensor, guide: torch.Tensor, radius: int, eps: float,
                      check: CancelCheck | None = None) -> torch.Tensor:
    """Edge-aware refinement: a guided filter (He et al.) with the frame as guide.

    Soft edges then follow the image's own edges (hair, fur). Frame by frame, polling ``check``
    before each frame; the radius is clamped to :func:`usable_guide_radius`.

    Args:
        masks: ``[T, H, W]``. guide: ``[T or 1, H, W, 3]`` in 0..1, same size.
        radius: window radius in pixels. eps: regulariser in squared 0..1 intensity units.
    """
    radius = usable_guide_radius(radius, masks.shape[1], masks.shape[2])
    if radius <= 0:
        return masks.clone()
    guide = guide.to(device=masks.device).permute(0, 3, 1, 2)  # [T, 3, H, W]
    out = torch.empty_like(masks)
    for t in range(masks.shape[0]):  # frame by frame: the filter keeps a few [16, H, W] temporaries
        _poll(check)
        frame = guide[t if guide.shape[0] > 1 else 0]
        out[t] = guided_filter(frame, masks[t], radius, eps, check).to(masks.dtype)
    return out.clamp_(0.0, 1.0)


def refine_masks(masks: torch.Tensor, settings: MaskRefineSettings, guide: torch.Tensor | None = None,
                 check: CancelCheck | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply every step of ``settings`` and return ``(soft, hard)``.

    Order: fill holes, drop islands, grow/shrink, temporal smoothing, feather, guided refinement,
    invert. ``hard`` is 1 wherever ``soft`` is above one 8-bit step (1/255): every pixel that a
    composite with ``soft`` can change, which is the region an inpainter must fill.

    Args:
        masks: ``[T, H, W]`` 0..1, any float dtype and device.
        guide: optional ``[T or 1, H, W, 3]`` frames for the edge-aware refinement.
        check: raises to stop; polled per frame (and per step of a large grow/shrink).
    Returns:
        soft ``[T, H, W]`` in 0..1 and hard ``[T, H, W]`` in {0, 1}, both in ``masks``' dtype and device.
    """
    dtype = masks.dtype
    work = masks.to(torch.float64 if dtype == torch.float64 else torch.float32)
    if settings.fill_holes:
        work = fill_holes(work, check)
    if settings.min_island_area > 1:
        work = remove_islands(work, settings.min_island_area, check)
    if settings.grow != 0:
        work = grow_or_shrink(work, settings.grow, settings.shape, check)
    if settings.temporal_sigma > 0:
        work = smooth_temporally(work, settings.temporal_sigma, check)
    if settings.feather > 0:
        work = feather(work, settings.feather, check)
    if guide is not None:
        work = refine_with_guide(work, guide, settings.guide_radius, settings.guide_eps, check)
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
