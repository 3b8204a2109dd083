"""Input preparation: processing size, resizing, mask dilation and normalisation.

parity: inference_propainter.py:33-45 (size rounding and PIL resize), 76-114 (mask resize
with nearest neighbour, dilation), 264-266 (``uint8 / 255 * 2 - 1``). The official script
resizes with PIL; we resize in torch (bicubic with antialiasing, PIL's kernel), which matches
PIL to within rounding. Inputs whose size is already a multiple of 8 are never resized, so the
parity case does not depend on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import MIN_SIZE, InpaintSettings
from ..ops.morphology import binary_dilation
from .errors import InpaintInputError

#: Frames resized per call: the float copy of a chunk is all the resize holds at once (a batch of
#: 120 1080p frames as float32 would be 3 GB). Each frame is resized on its own either way, so
#: the result is bit-identical to resizing the whole batch in one call.
RESIZE_CHUNK = 8


def processing_size(settings: InpaintSettings, height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` the networks run at; refuses sizes below 128 (RAFT returns NaN there).

    Raises:
        InpaintInputError: the rounded size is below 128 on either side.
    """
    size = settings.processing_size(height, width)
    if min(size) < MIN_SIZE:
        raise InpaintInputError(
            f"the processing size would be {size[1]}x{size[0]} (width x height) for "
            f"{width}x{height} input frames, but ProPainter needs at least {MIN_SIZE}x{MIN_SIZE} "
            "after rounding down to multiples of 8 (RAFT's coarsest level is empty below that); "
            "upscale the frames, or raise resize_ratio / height / width.")
    return size


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 frames to ``size`` with antialiased bicubic (PIL's default filter).

    Args:
        frames: ``[T, H, W, 3]`` uint8.
        size: ``(h, w)``.

    Returns:
        ``[T, h, w, 3]`` uint8, ``frames`` itself when the size already matches.
    """
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    out = torch.empty((frames.shape[0], *size, 3), dtype=torch.uint8, device=frames.device)
    for first in range(0, frames.shape[0], RESIZE_CHUNK):
        chunk = frames[first:first + RESIZE_CHUNK]
        planar = chunk.permute(0, 3, 1, 2).to(torch.float32)  # [t, 3, H, W]
        resized = F.interpolate(planar, size=size, mode="bicubic", align_corners=False, antialias=True)
        out[first:first + RESIZE_CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return out


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binarise (nonzero = hole) and resize masks with PIL's nearest-neighbour rule.

    Args:
        masks: ``[T, H, W]`` any dtype.
        size: ``(h, w)``.

    Returns:
        ``[T, h, w]`` bool.
    """
    holes = masks != 0
    if tuple(holes.shape[1:]) == tuple(size):
        return holes
    # "nearest-exact" samples source pixel floor((i + 0.5) * scale), as PIL's NEAREST does
    out = torch.empty((holes.shape[0], *size), dtype=torch.bool, device=holes.device)
    for first in range(0, holes.shape[0], RESIZE_CHUNK):
        chunk = holes[first:first + RESIZE_CHUNK].unsqueeze(1).to(torch.float32)  # [t, 1, H, W]
        out[first:first + RESIZE_CHUNK] = F.interpolate(chunk, size=size, mode="nearest-exact")[:, 0] > 0.5
    return out


def prepare_segment(frames: torch.Tensor, masks: torch.Tensor, size: tuple[int, int],
                    mask_dilation: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Move one segment to ``device`` and bring it to the processing size.

    Args:
        frames: ``[T, H, W, 3]`` uint8, any device.
        masks: ``[T, Hm, Wm]`` (any size; nonzero = hole), any device.

    Returns:
        ``(original, holes)``: ``[T, h, w, 3]`` uint8 and the dilated hole ``[T, h, w]`` bool.
    """
    original = resize_frames(frames.to(device), size)
    holes = binary_dilation(resize_masks(masks.to(device), size), mask_dilation)
    return original, holes


def normalise(original: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs from uint8 frames and bool holes.

    Args:
        original: ``[T, h, w, 3]`` uint8.
        holes: ``[T, h, w]`` bool.

    Returns:
        ``frames [1, T, 3, h, w]`` float32 in -1..1 and ``masks [1, T, 1, h, w]`` float32 {0, 1}.

    parity: core/utils.py:ToTorchFormatTensor (contiguous ``[T, 3, H, W]``, ``float().div(255)``)
    and inference_propainter.py:264 (``* 2 - 1``).
    """
    planar = original.permute(0, 3, 1, 2).contiguous()  # [T, 3, h, w]
    frames = (planar.to(torch.float32).div(255) * 2 - 1).unsqueeze(0)  # [1, T, 3, h, w]
    masks = holes.to(torch.float32)[None, :, None]  # [1, T, 1, h, w]
    return frames, masks
