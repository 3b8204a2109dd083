"""Paste filled frames into the untouched originals, frame by frame.

ComfyUI-free. The guarantee: wherever the mask is 0 the output equals the original bit for bit,
whatever resolution the fill was made at, because those pixels are copied, never recomputed.
The fill is resized (antialiased bicubic) to the original size, or to a crop rectangle of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from .mask_ops import dilate

logger = logging.getLogger(__name__)

# Colour matching needs at least this many ring pixels to trust the statistics.
MIN_RING_PIXELS = 16
# The contrast gain of the colour match is kept within [1/MAX_GAIN, MAX_GAIN].
MAX_GAIN = 2.0


@dataclass(frozen=True)
class CropRegion:
    """Where fill frames belong in the original frame, in original pixels.

    The ``VANISH_CROP`` value passed between nodes is the plain dict ``{"x", "y", "width",
    "height"}`` (integers; x/y = top-left corner); :meth:`from_value` reads it.
    """

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def from_value(cls, value: "CropRegion | Mapping[str, int]") -> "CropRegion":
        """Read a ``VANISH_CROP`` dict (or pass a CropRegion through). Raises ValueError."""
        if isinstance(value, CropRegion):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"a crop region must be a dict with x, y, width, height; got {type(value).__name__}")
        missing = [key for key in ("x", "y", "width", "height") if key not in value]
        if missing:
            raise ValueError(f"the crop region lacks {missing}")
        try:
            region = cls(*(int(value[key]) for key in ("x", "y", "width", "height")))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the crop region's values must be integers: {dict(value)}") from exc
        if region.width <= 0 or region.height <= 0 or region.x < 0 or region.y < 0:
            raise ValueError(f"the crop region {region.as_dict()} has a negative corner or an empty size")
        return region

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def fits(self, width: int, height: int) -> bool:
        """True when the rectangle lies inside a ``width`` x ``height`` frame."""
        return self.x + self.width <= width and self.y + self.height <= height

    def rows(self) -> slice:
        return slice(self.y, self.y + self.height)

    def cols(self) -> slice:
        return slice(self.x, self.x + self.width)


def resize_frame(frame: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize ``[h, w, 3]`` to ``[height, width, 3]`` with antialiased bicubic, clamped to 0..1.

    Same size: returned unchanged (no resampling, no rounding).
    """
    if frame.shape[0] == height and frame.shape[1] == width:
        return frame
    chw = frame.permute(2, 0, 1).unsqueeze(0).float()  # [1, 3, h, w]
    resized = F.interpolate(chw, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return resized[0].permute(1, 2, 0).clamp_(0.0, 1.0).to(frame.dtype)  # [height, width, 3]


def match_colors(fill: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, ring_width: int,
                 check: Callable[[], None] | None = None) -> torch.Tensor:
    """Shift the fill's colours so a ring around the hole matches the original there.

    Per channel, the fill's mean and spread on the ring (pixels outside the mask within
    ``ring_width`` of it) are mapped onto the original's; the gain is kept within
    ``[1/MAX_GAIN, MAX_GAIN]``. Too small a ring (or no hole) leaves the fill unchanged.

    Args:
        fill, original: ``[H, W, 3]`` 0..1. mask: ``[H, W]`` soft mask.
    Returns:
        ``[H, W, 3]`` corrected fill in 0..1.
    """
    selected = (mask > 0).to(fill.dtype)
    ring = (dilate(selected[None], ring_width, "disk", check)[0] > 0) & (selected == 0)  # [H, W]
    if int(ring.sum()) < MIN_RING_PIXELS:
        return fill
    fill_ring, orig_ring = fill[ring], original[ring]  # [N, 3]
    gain = (orig_ring.std(0) / fill_ring.std(0).clamp_min(1e-6)).clamp(1.0 / MAX_GAIN, MAX_GAIN)
    return ((fill - fill_ring.mean(0)) * gain + orig_ring.mean(0)).clamp(0.0, 1.0)


def composite_frame(original: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor, *,
                    crop: CropRegion | None = None, color_ring: int = 0,
                    check: Callable[[], None] | None = None) -> torch.Tensor:
    """Blend one filled frame into its original.

    Args:
        original: ``[H, W, 3]`` 0..1. fill: ``[h, w, 3]`` 0..1 covering the whole frame, or the
            crop when ``crop`` is given (any size; resized to fit). mask: ``[H, W]`` soft mask.
        crop: where the fill belongs; mask values outside it are ignored.
        color_ring: ring width in pixels for :func:`match_colors` (0 = no colour matching).
    Returns:
        ``[H, W, 3]`` where ``mask == 0`` holds ``original``'s exact values.
    """
    out = original.clone()
    target = out
    if crop is not None:  # work on views of the rectangle; the rest of `out` stays the copy
        original = original[crop.rows(), crop.cols()]
        mask = mask[crop.rows(), crop.cols()]
        target = out[crop.rows(), crop.cols()]
    if not bool((mask > 0).any()):
        return out
    fill = resize_frame(fill.to(device=original.device, dtype=original.dtype), original.shape[0], original.shape[1])
    if color_ring > 0:
        fill = match_colors(fill, original, mask, color_ring, check)
    weight = mask.clamp(0.0, 1.0).unsqueeze(-1)  # [h, w, 1]
    # lerp returns `fill` exactly at weight 1; where() keeps `original` exactly at weight 0.
    blended = torch.where(weight > 0, torch.lerp(original, fill, weight.expand_as(fill)), original)
    target.copy_(blended)
    return out


def composite_frames(original: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor, *,
                     crop: CropRegion | None = None, color_ring: int = 0,
                     on_frame: Callable[[int], None] | None = None,
                     check: Callable[[], None] | None = None) -> torch.Tensor:
    """Composite a clip frame by frame (the resized fill never exists for the whole clip).

    Args:
        original: ``[T, H, W, 3]`` 0..1, any device. fill: ``[T or 1, h, w, 3]`` (one frame is
            reused for every frame, e.g. a still background). mask: ``[T, H, W]`` soft mask.
        crop: see :func:`composite_frame`. color_ring: see :func:`match_colors`.
        on_frame: called with the frame index after each frame (progress, cancel).
        check: raises to stop; polled inside a frame's colour-match ring (a wide ring is many steps).
    Returns:
        ``[T, H, W, 3]`` CPU float32.
    """
    frames = original.shape[0]
    if fill.shape[0] not in (1, frames):
        raise ValueError(f"fill has {fill.shape[0]} frames; expected 1 or {frames}")
    if crop is not None and bool((mask > 0).any()):
        inside = torch.zeros_like(mask[0], dtype=torch.bool)
        inside[crop.rows(), crop.cols()] = True
        if bool((mask[:, ~inside] > 0).any()):
            logger.warning("mask selects pixels outside the crop %s; they keep the original", crop.as_dict())
    out = torch.empty(original.shape, dtype=torch.float32, device="cpu")
    for t in range(frames):
        fill_t = fill[t if fill.shape[0] > 1 else 0]
        out[t] = composite_frame(original[t].float(), fill_t.float(), mask[t].to(original.device).float(),
                                 crop=crop, color_ring=color_ring, check=check).cpu()
        if on_frame is not None:
            on_frame(t)
    return out
