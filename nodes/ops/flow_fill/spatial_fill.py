"""Spatial fill of never-seen pixels: what no frame reveals.

It is filled spatially once (OpenCV Telea, from the pixels around it, propagated ones included)
and then *carried along the flow* into the next frames, so the invented content moves with the
background instead of flickering.
"""
from __future__ import annotations

import cv2
import numpy as np

from .numeric import sample


def carry_and_fill(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, previous: np.ndarray | None,
                   to_previous: np.ndarray | None, radius: int, avoid: np.ndarray | None = None) -> np.ndarray:
    """Fill never-seen pixels ``(ys, xs)`` of ``frame [H, W, 3]`` (float32, modified in place).

    Pixels whose flow leads into the previous output frame take its (already filled) colour, so
    a spatial fill made once moves with the background; the rest get a Telea fill from the
    pixels around them, never from the ``avoid [H, W]`` pixels (things that move on their own).
    """
    h, w = frame.shape[:2]
    spatial = np.ones(ys.size, bool)
    if previous is not None and to_previous is not None and ys.size:
        motion = sample(to_previous, ys.astype(np.float32), xs.astype(np.float32))
        qy, qx = ys + motion[:, 1], xs + motion[:, 0]
        inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        frame[ys[inside], xs[inside]] = sample(previous, qy[inside], qx[inside])
        spatial = ~inside
    if spatial.any():
        mask = np.zeros((h, w), np.uint8)
        mask[ys[spatial], xs[spatial]] = 255
        if avoid is not None:
            mask[avoid] = 255  # painted over too, so that nothing is drawn from them
        rounded = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        painted = cv2.inpaint(rounded, mask, radius, cv2.INPAINT_TELEA)
        frame[ys[spatial], xs[spatial]] = painted[ys[spatial], xs[spatial]]
    return frame
