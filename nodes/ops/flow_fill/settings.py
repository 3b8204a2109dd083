"""Settings, the cancel exception and the masks' dilation shared by every stage of flow_fill."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import cv2
import numpy as np

DisPreset = Literal["ultrafast", "fast", "medium"]
# The official 3x3 cross (scipy.ndimage.generate_binary_structure(2, 1)).
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


class InpaintCancelled(Exception):
    """Raised between frames when ``should_cancel()`` returned True."""


@dataclass(frozen=True)
class FlowFillSettings:
    """Settings of the weights-free backend.

    Attributes:
        mask_dilation: iterations of 3x3-cross dilation of the hole (official default 4).
        flow_mask_dilation: dilation of the region whose flow is replaced by interpolation (the
            official pipeline uses the same value as ``mask_dilation``; DIS needs more, as its
            patches and smoothing carry the object's motion well past its outline: 16 measured
            best on the bench clips).
        max_propagation: how many frames a pixel is traced in each direction.
        segment_length: output frames per streamed window.
        spatial_radius: Telea radius for never-seen pixels.
        flow_preset: DIS preset.
        two_sided: each frame's fill is the mean of a recursion run forward in time and one run
            backward (the carried fill of what no frame shows and the temporal blend), each window's
            backward one starting at its last frame, context included; False: forward only, and the
            result does not depend on ``segment_length``.
        second_draw: the clip is filled twice and the two fills are averaged: the second measures
            every flow on another grid (DIS on the frames mirrored, one pyramid level finer: the
            medium preset's flows at full resolution instead of half). Everything downstream of the
            flows (the moving layers, the traces' landings, which candidate wins the vote) then comes
            out a little differently, and the two fills' errors are largely independent: on the
            issue-13 bench the mean scores 21.24 / 22.95 dB against one fill's 21.00 / 22.61, higher
            on 22 of 24 cases and on 23 of 24 held-out ones, for about twice the time
            (bench/RESULTS.md, issue 13 session 20). False: one fill, half the time.
    """

    mask_dilation: int = 4
    flow_mask_dilation: int = 16
    max_propagation: int = 30
    segment_length: int = 60
    spatial_radius: int = 5
    flow_preset: DisPreset = "medium"
    two_sided: bool = True
    second_draw: bool = True


# Working memory of a run, per pixel of the processing size: per frame of the streamed window (its
# frames as float32, the completed flows of each pair and the layers' masks, the sources' maps),
# measured 43-57 B at 960x540 without a moving layer (windows of 120 / 40 frames); a moving layer
# adds its own flows, 16 B (76-85 B measured at 432 px, where fixed overheads weigh more; see
# bench/RESULTS.md, issue 13 session 15); and per frame of the clip (the output).
WINDOW_BYTES_PER_PIXEL_FRAME = 80
CLIP_BYTES_PER_PIXEL_FRAME = 3
# And once, whatever the clip's length: the two recursions' carry histories (spatial_fill.CarryHistory:
# up to 4 frames as float32 and the carried pixels' origins and corrections, 72 B each).
CARRY_BYTES_PER_PIXEL = 144


def working_bytes(height: int, width: int, frames: int, settings: FlowFillSettings) -> int:
    """Estimated peak working memory of :func:`.pipeline.flow_fill_inpaint`: ``frames`` of ``height x width``.

    A window holds ``segment_length`` output frames and ``max_propagation`` frames of context on
    either side (or the whole clip, when shorter); the output is the size of the clip; the carried
    fill's history does not grow with either.
    """
    window = min(frames, settings.segment_length + 2 * settings.max_propagation)
    pixels = height * width
    return pixels * (WINDOW_BYTES_PER_PIXEL_FRAME * window + CLIP_BYTES_PER_PIXEL_FRAME * frames
                     + CARRY_BYTES_PER_PIXEL)


def dilate_holes(masks: np.ndarray, iterations: int) -> np.ndarray:
    """Dilate bool masks ``[T, H, W]`` (or ``[H, W]``) with a 3x3 cross, ``iterations`` times.

    Equals ``propainter_core.ops.morphology.binary_dilation`` and
    ``scipy.ndimage.binary_dilation(m, iterations=n)`` (the official ``read_mask``) per frame;
    OpenCV's dilation does it per frame without torch's thread pool, which costs more than the
    dilation itself on a busy CPU.
    """
    masks = np.asarray(masks, bool)
    if iterations <= 0 or masks.size == 0:
        return masks.copy()
    frames = masks.reshape(-1, *masks.shape[-2:]).astype(np.uint8)
    out = np.stack([cv2.dilate(f, _CROSS, iterations=iterations) for f in frames]).astype(bool)
    return out.reshape(masks.shape)


def check_cancel(should_cancel: Callable[[], bool] | None) -> None:
    """Raise :class:`InpaintCancelled` when ``should_cancel()`` says so."""
    if should_cancel is not None and should_cancel():
        raise InpaintCancelled("inpainting was cancelled")
