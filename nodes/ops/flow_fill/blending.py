"""Blending: steadying the fill along the motion and removing the seam around the hole.

The fill is blended half and half with the previous output frame carried along the flow (a
recursive filter along the motion), then shifted so it meets the pixels around the hole without
a step: sources from other frames differ in light, haze and spray, and the jump measured around
the outline is spread over the hole as a membrane, as in Poisson cloning.
"""
from __future__ import annotations

import cv2
import numpy as np

from .numeric import membrane, sample, window_mean

# The boundary match needs at least this many known pixels around a part of the hole.
_MIN_RING = 8
# The step along the outline is averaged over windows this wide; ring pixels this far apart
# count as one independent sample of it (neighbouring steps share texture); Jacobi steps that
# relax the correction after its push-pull first guess.
_BOUNDARY_WINDOW = 15
_RING_CORRELATION = 8.0
_BOUNDARY_RELAX = 30
# Weight of a frame's own fill against the previous output frame carried along the flow
# (a recursive temporal filter of the hole; 1 would switch it off). 0.5 measured best between
# quality and flicker on the issue-6 bench clips.
OWN_WEIGHT = 0.5


def blend_with_previous(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, previous: np.ndarray,
                        to_previous: np.ndarray, weight: float) -> None:
    """Blend hole pixels ``(ys, xs)`` of ``frame`` with the previous output carried along the flow.

    ``frame = weight * frame + (1 - weight) * previous(p + flow)`` in place, where the flow
    leads inside the frame: a recursive filter along the motion that calms the flicker of
    fills taken from different source frames, while the boundary match that follows keeps
    the result seamless. ``to_previous [H, W, 2]`` is the completed flow into the previous frame.
    """
    h, w = frame.shape[:2]
    motion = sample(to_previous, ys.astype(np.float32), xs.astype(np.float32))
    qy, qx = ys + motion[:, 1], xs + motion[:, 0]
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    carried = sample(previous, qy[inside], qx[inside])
    frame[ys[inside], xs[inside]] = weight * frame[ys[inside], xs[inside]] + (1.0 - weight) * carried


def match_boundary(frame: np.ndarray, hole: np.ndarray, ignore: np.ndarray | None = None) -> None:
    """Shift the fill of ``hole`` so that it meets the frame around it without a step (in place).

    Propagated pixels come from other frames, where light, exposure, haze or spray may differ;
    the difference shows as an edge along the hole's outline. As in Poisson cloning with the
    fill's own gradients as guidance, the colour jump across the outline, measured on the ring of
    known pixels around the hole, is spread smoothly over the hole (a membrane) and removed.
    Gradients that cross the outline are not counted as a jump (see below), and texture makes
    jumps of either sign: the jump is averaged along the ring and shrunk towards zero where it
    does not stand out of that noise (``m^2 / (m^2 + s^2 / n)``), so a fill that already matches
    is left nearly as it is. ``frame [H, W, 3]`` float32, ``hole [H, W]`` bool; ``ignore [H, W]``
    bool: known pixels that are not the background (a thing moving beside the hole), left out of
    the ring.
    """
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - 3), min(h, ys.max() + 4)
    x0, x1 = max(0, xs.min() - 3), min(w, xs.max() + 4)
    box, inside = frame[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~inside
    if ignore is not None:
        ring &= ~ignore[y0:y1, x0:x1]
    if ring.sum() < _MIN_RING:
        return  # the hole covers (nearly) the whole frame: nothing to match against
    # The jump across the outline under a piecewise-linear model: known values 1 and 2 px out
    # (o1, o2), fill values 1 and 2 px in (i1, i2); a ramp running across gives zero, an offset
    # of the fill gives the offset.
    square = np.ones((3, 3), np.uint8)
    first = inside & cv2.dilate(ring.astype(np.uint8), square).astype(bool)
    second = inside & ~first & cv2.dilate(first.astype(np.uint8), square).astype(bool)
    outer = ~inside & ~ring & cv2.dilate(ring.astype(np.uint8), square).astype(bool)
    i1 = window_mean(box, first, 3)
    i2 = window_mean(box, second, 5, fallback=i1)  # a hole 1-2 px thin: no second layer
    o2 = window_mean(box, outer, 3, fallback=box)  # the frame's edge: no second ring
    step = np.where(ring[..., None], (3.0 * box - o2 - 3.0 * i1 + i2) / 2.0, 0.0).astype(np.float32)
    mean = window_mean(step, ring, _BOUNDARY_WINDOW)
    spread = np.maximum(window_mean(step * step, ring, _BOUNDARY_WINDOW) - mean * mean, 0.0)
    ring_pixels = cv2.filter2D(ring.astype(np.float32), -1, np.ones((_BOUNDARY_WINDOW,) * 2, np.float32),
                               borderType=cv2.BORDER_CONSTANT)
    samples = np.maximum(ring_pixels / _RING_CORRELATION, 1.0)[..., None]
    settled = mean * (mean * mean / np.maximum(mean * mean + spread / samples, 1e-6))
    correction = membrane(settled, ring, inside, _BOUNDARY_RELAX)
    box[inside] += correction[inside]
