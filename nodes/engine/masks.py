"""Masks, kept compactly: a mask file read window by window, SAM 2's masks bit-packed on disk,
and the per-window refinement (Mask Dilate & Blur) with the temporal context it needs.

A mask source answers ``read(start, stop)`` with float32 ``[n, H, W]`` in 0..1: exactly the
MASK values the node graph would hold for those frames. Nothing clip-sized lives in RAM: a mask
file is decoded per window; SAM 2's per-object masks go to a bit-packed memory map in the work
folder (``H * W / 8`` bytes per object and frame).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..ops import mask_ops
from .errors import EngineError
from .settings import MaskOptions
from .sources import FrameSource, open_source

#: MASK values from uint8 like Load Video Frames makes them (``np.divide`` by float32 255).
_U8_SCALE = np.float32(255)


class MaskSource:
    """Base class: ``num_frames`` (1 = one mask for every frame), ``height``, ``width``."""

    num_frames: int
    height: int
    width: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Masks of frames ``start .. stop - 1`` as float32 ``[n, H, W]`` in 0..1."""
        raise NotImplementedError

    def identity(self) -> str:
        raise NotImplementedError


class FileMaskSource(MaskSource):
    """A mask video, folder of mask images, or one mask image (used for every frame).

    The mask is the alpha channel where a window's alpha is not fully opaque, else the brightest
    of R, G, B (white = remove), as Load Video Frames' ``mask_path``; ``threshold > 0`` makes it
    0/1 (``>= threshold`` is 1). (Load Video Frames decides alpha-or-colour once for the whole
    clip; here it is decided per window, which differs only for a mask clip whose alpha is opaque
    in some windows and not in others.)
    """

    def __init__(self, frames: FrameSource, threshold: float, clip_frames: int) -> None:
        self.frames = frames
        self.threshold = float(threshold)
        self.height, self.width = frames.height, frames.width
        self.single = frames.num_frames == 1
        self.num_frames = clip_frames

    def read(self, start: int, stop: int) -> np.ndarray:
        if self.single:
            rgba = np.repeat(self.frames.read_rgba(0, 1), stop - start, axis=0)
        else:
            rgba = self.frames.read_rgba(start, stop)
        if rgba.shape[-1] == 4 and int(rgba[..., 3].min()) < 255:
            values = rgba[..., 3]
        else:
            # [n, H, W]: the brightest channel (np.maximum twice is ~10x a max over the last axis)
            values = np.maximum(np.maximum(rgba[..., 0], rgba[..., 1]), rgba[..., 2])
        masks = np.divide(values, _U8_SCALE, dtype=np.float32)
        if self.threshold > 0:
            masks = (masks >= self.threshold).astype(np.float32)
        return masks

    def identity(self) -> str:
        return f"maskfile:{self.frames.identity()}:{self.threshold}"


class ArrayMaskSource(MaskSource):
    """Masks in memory: ``[T, H, W]`` (or ``[1, H, W]``) float 0..1, bool or uint8 (255 = 1)."""

    def __init__(self, masks: np.ndarray | torch.Tensor, clip_frames: int) -> None:
        self.masks = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
        self.height, self.width = self.masks.shape[1:3]
        self.num_frames = clip_frames

    def read(self, start: int, stop: int) -> np.ndarray:
        part = self.masks[:1].repeat(stop - start, 0) if self.masks.shape[0] == 1 else self.masks[start:stop]
        if part.dtype == np.uint8:
            return np.divide(part, _U8_SCALE, dtype=np.float32)
        return part.astype(np.float32)

    def identity(self) -> str:
        import hashlib

        data = np.ascontiguousarray(self.masks)
        return f"maskarray:{data.dtype}:{data.shape}:{hashlib.sha256(memoryview(data).cast('B')).hexdigest()}"


class MaskStore(MaskSource):
    """Per-object bool masks ``[N, T, H, W]``, bit-packed in a memory-mapped file.

    Written by SAM 2 tracking through ``store[obj_index, t] = mask`` (``shape`` is what
    ``sam2_session`` reads); read back as the union of the objects.
    """

    def __init__(self, path: Path, objects: int, frames: int, height: int, width: int,
                 mode: str = "r") -> None:
        self.path = Path(path)
        self.shape = (objects, frames, height, width)
        self.num_frames, self.height, self.width = frames, height, width
        self.row_bytes = (height * width + 7) // 8
        self._mode = mode
        self._bits: np.memmap | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_bits"] = None
        return state

    @property
    def bits(self) -> np.memmap:
        if self._bits is None:
            self._bits = np.memmap(self.path, np.uint8, self._mode, shape=(self.shape[0], self.shape[1], self.row_bytes))
        return self._bits

    def __setitem__(self, key: tuple[int, int], mask: np.ndarray) -> None:
        obj, t = key
        self.bits[obj, t] = np.packbits(np.asarray(mask, dtype=bool).reshape(-1))

    def read_union(self, start: int, stop: int) -> np.ndarray:
        """``[n, H, W]`` bool: any object."""
        packed = np.bitwise_or.reduce(self.bits[:, start:stop], axis=0)  # [n, row_bytes]
        unpacked = np.unpackbits(packed, axis=1, count=self.height * self.width)
        return unpacked.reshape(stop - start, self.height, self.width).astype(bool)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.read_union(start, stop).astype(np.float32)

    def flush(self) -> None:
        if self._bits is not None:
            self._bits.flush()

    def close(self) -> None:
        self.flush()
        self._bits = None

    def identity(self) -> str:
        return f"maskstore:{self.path}"


def open_mask_source(spec, like: FrameSource, threshold: float = 0.0) -> MaskSource:
    """The masks for clip ``like``: a mask video/folder/image path, masks in memory, or a MaskSource.

    Raises:
        EngineError: unreadable, or a frame count that is neither the clip's nor 1.
    """
    if isinstance(spec, MaskSource):
        source = spec
    elif isinstance(spec, (np.ndarray, torch.Tensor)):
        if spec.ndim != 3 or tuple(spec.shape[1:]) != (like.height, like.width):
            raise EngineError("masks", f"has shape {list(spec.shape)}; masks in memory must be "
                              f"[frames, {like.height}, {like.width}] like the clip.",
                              "give one mask per frame at the clip's size, or a single mask.")
        source = ArrayMaskSource(spec, like.num_frames)
        count = spec.shape[0]
        _check_count(count, like)
        return source
    else:
        frames = open_source(spec, input_name="masks", size=(like.width, like.height))
        _check_count(frames.num_frames, like)
        return FileMaskSource(frames, threshold, like.num_frames)
    _check_count(source.num_frames, like)
    return source


def _check_count(count: int, like: FrameSource) -> None:
    if count not in (1, like.num_frames):
        raise EngineError("masks", f"has {count} frames but the clip has {like.num_frames}.",
                          "give one mask per frame of the clip (same length), or a single mask image "
                          "to use for every frame.")


# --------------------------------------------------------------------------- refinement
def temporal_context(options: MaskOptions) -> int:
    """Neighbour frames on each side that the per-window refinement needs (the temporal blur's radius)."""
    if options.temporal_sigma <= 0:
        return 0
    return max(int(math.ceil(mask_ops.GAUSSIAN_TRUNCATE * options.temporal_sigma)), 1)


def refine_window(masks: MaskSource, start: int, stop: int, options: MaskOptions
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask Dilate & Blur for frames ``start .. stop - 1``, equal to refining the whole clip.

    Reads :func:`temporal_context` extra frames on each side (clipped to the clip, where the
    whole-clip blur repeats the end frames just the same), refines, and keeps the window.

    Returns:
        soft float32 ``[n, H, W]`` in 0..1 (what Composite Frames blends with) and hard bool
        ``[n, H, W]`` (what the inpainter fills).
    """
    context = temporal_context(options)
    first, last = max(0, start - context), min(masks.num_frames, stop + context)
    raw = torch.from_numpy(masks.read(first, last))  # [m, H, W]
    # Mask stages run here, in order, on the window with its context. A later stage (e.g. an
    # effects mask for shadows and reflections) slots in before or after the refinement.
    soft, hard = mask_ops.refine_masks(raw, options.refine_settings())
    keep = slice(start - first, stop - first)
    return soft[keep].contiguous(), hard[keep] > 0
