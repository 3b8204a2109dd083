"""Tensor layouts between ComfyUI and the core, with the input checks every node shares.

ComfyUI:  IMAGE ``[T, H, W, 3]`` float in 0..1, MASK ``[T, H, W]`` float in 0..1 (1 = selected).
Core:     frames ``[B, T, 3, H, W]`` float in -1..1, masks ``[B, T, 1, H, W]`` in {0, 1}.

Current ComfyUI may hand IMAGE over on the GPU or in fp16; :func:`check_image` accepts any
device and floating dtype and returns float32 on the same device. Nodes return CPU float32.
"""
from __future__ import annotations

import math

import torch

from . import _comfy
from ._errors import VanishError
from .ops.inpaint_runner import to_uint8


def check_image(image: object, node: str, name: str = "images", *, allow_alpha: bool = False) -> torch.Tensor:
    """Validate an IMAGE input and return it as float32 ``[T, H, W, 3]`` (same device).

    Raises:
        VanishError: not a tensor, wrong rank, RGBA/greyscale, no frames, NaN/inf or values
            outside 0..1 (beyond rounding slack).
    """
    if not isinstance(image, torch.Tensor):
        raise VanishError(node, name, f"must be an IMAGE tensor, got {type(image).__name__}.",
                          "connect an IMAGE output (e.g. Load Video Frames) to it.")
    if image.ndim == 3:  # a single frame [H, W, C]
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise VanishError(node, name, f"must be [frames, height, width, 3], got shape {list(image.shape)}.",
                          "connect an IMAGE output; a MASK goes to a mask input.")
    channels = image.shape[-1]
    if channels == 4 and allow_alpha:
        pass
    elif channels == 4:
        raise VanishError(node, name, "has 4 channels (RGBA); this node needs RGB.",
                          "drop the alpha channel first, e.g. with a 'Split Image with Alpha' node.")
    elif channels == 1:
        raise VanishError(node, name, "has 1 channel (greyscale); this node needs RGB.",
                          "convert it to RGB first, or connect it to a MASK input if it is a mask.")
    elif channels != 3:
        raise VanishError(node, name, f"has {channels} channels in its last dimension; expected 3 (RGB).",
                          "check the layout: ComfyUI images are [frames, height, width, channels].")
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise VanishError(node, name, f"is empty (shape {list(image.shape)}).",
                          "check the frame selection upstream (skip/cap/every-nth) leaves frames.")
    image = image.float() if image.dtype != torch.float32 else image
    _check_finite_range(image, node, name)
    return image


def check_mask(mask: object, node: str, name: str = "mask") -> torch.Tensor:
    """Validate a MASK input and return it as float32 ``[T, H, W]`` (same device)."""
    if not isinstance(mask, torch.Tensor):
        raise VanishError(node, name, f"must be a MASK tensor, got {type(mask).__name__}.",
                          "connect a MASK output (e.g. SAM 2 Propagate or Mask Dilate & Blur).")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim == 4 and mask.shape[-1] in (1, 3):  # an IMAGE connected through a converter
        mask = mask[..., 0]
    if mask.ndim != 3:
        raise VanishError(node, name, f"must be [frames, height, width], got shape {list(mask.shape)}.",
                          "connect a MASK output; convert an IMAGE with 'Convert Image to Mask'.")
    if mask.shape[0] == 0:
        raise VanishError(node, name, "has no frames.", "check the mask source upstream.")
    mask = mask.float() if mask.dtype != torch.float32 else mask
    _check_finite_range(mask, node, name)
    return mask


#: Input checks read this many values at a time, polling for a cancel in between (a long clip
#: takes seconds to scan on a busy CPU).
CHECK_CHUNK_VALUES = 1 << 23


def _check_finite_range(x: torch.Tensor, node: str, name: str) -> None:
    lo, hi = math.inf, -math.inf
    per_frame = max(1, x[0].numel()) if x.ndim > 0 and x.shape[0] else 1
    for part in x.split(max(1, CHECK_CHUNK_VALUES // per_frame)) if x.ndim > 0 else (x,):
        _comfy.throw_if_interrupted()
        low, high = (float(v) for v in torch.aminmax(part))  # NaN propagates into both; inf shows
        if not (math.isfinite(low) and math.isfinite(high)):
            raise VanishError(node, name, "contains NaN or infinite values.",
                              "check the node that produced it; re-run it in fp32 if it ran in fp16.")
        lo, hi = min(lo, low), max(hi, high)
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise VanishError(node, name, f"has values from {lo:.3g} to {hi:.3g}; ComfyUI images and masks are 0..1.",
                          "rescale it to 0..1 (a 0..255 image must be divided by 255).")


def match_mask_to_frames(mask: torch.Tensor, frames: torch.Tensor, node: str,
                         mask_name: str = "mask", frames_name: str = "images") -> torch.Tensor:
    """Broadcast a single mask to every frame and check counts and sizes agree.

    Args:
        mask: ``[Tm, H, W]``. frames: ``[T, H, W, C]``.
    Returns:
        ``[T, H, W]`` (a view when broadcasting).
    """
    t, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
    if mask.shape[1:] != (h, w):
        raise VanishError(node, mask_name,
                          f"is {mask.shape[2]}x{mask.shape[1]} but '{frames_name}' is {w}x{h}.",
                          "resize the mask to the frames (e.g. 'Upscale Image' on the mask as image), "
                          "or load it with Load Video Frames at the same size.")
    if mask.shape[0] == 1 and t > 1:
        return mask.expand(t, h, w)
    if mask.shape[0] != t:
        raise VanishError(node, mask_name, f"has {mask.shape[0]} frames but '{frames_name}' has {t}.",
                          "give one mask per frame, or a single mask to use for every frame; "
                          "use the same frame selection for both loaders.")
    return mask


def image_to_core(image: torch.Tensor) -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]`` 0..1 → core frames ``[1, T, 3, H, W]`` -1..1."""
    return (image.permute(0, 3, 1, 2) * 2.0 - 1.0).unsqueeze(0)  # [1, T, 3, H, W]


def core_to_image(frames: torch.Tensor) -> torch.Tensor:
    """Core frames ``[1, T, 3, H, W]`` -1..1 → IMAGE ``[T, H, W, 3]`` 0..1 (CPU float32)."""
    out = ((frames[0].float() + 1.0) * 0.5).clamp(0.0, 1.0)
    return out.permute(0, 2, 3, 1).contiguous().cpu()  # [T, H, W, 3]


def mask_to_core(mask: torch.Tensor) -> torch.Tensor:
    """MASK ``[T, H, W]`` → core masks ``[1, T, 1, H, W]``."""
    return mask.unsqueeze(1).unsqueeze(0)  # [1, T, 1, H, W]


def core_to_mask(mask: torch.Tensor) -> torch.Tensor:
    """Core masks ``[1, T, 1, H, W]`` → MASK ``[T, H, W]`` (CPU float32)."""
    return mask[0, :, 0].float().contiguous().cpu()  # [T, H, W]


def image_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """IMAGE 0..1 float → uint8 ``[T, H, W, C]`` on the CPU (rounding, as ComfyUI's savers do), a few
    frames at a time (:func:`.ops.inpaint_runner.to_uint8`: no float32 temporaries of the whole clip)."""
    return to_uint8(image)


def uint8_to_image(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` → IMAGE float32 0..1."""
    return frames.float().div_(255.0)
