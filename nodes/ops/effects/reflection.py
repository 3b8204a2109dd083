"""The reflection test: the object mirrored about its contact line, seen in the frame's change.

On a glossy floor or still water the frame is the floor plus a weak copy of the object flipped
upside down about the line where the object meets the floor: ``I = B + k (O' - B)`` with ``O'``
the mirrored object, ``B`` the background and ``0 < k < 1`` the floor's reflectance. So over
the mirrored object's footprint the change ``I - B`` must correlate with ``O' - B``. The contact
line is the object's lowest row, searched a few pixels lower (a wheel's or a foot's gap).

Only the vertical mirror (a horizontal floor seen from the side or above) is looked for; a
mirror wall or a tilted floor is not.

Arrays: frames uint8 ``[H, W, 3]``, backgrounds float32 ``[H, W, 3]`` 0..255 (NaN = none),
masks bool ``[H, W]``.
"""
from __future__ import annotations

import numpy as np

# The contact line is searched this far below the object's lowest row (fraction of its height).
CONTACT_SEARCH = 0.1
# Fit acceptance: correlation of the change with the mirrored object's contrast, reflectance.
MIN_CORRELATION = 0.5
MIN_REFLECTANCE = 0.05
# Pixels of the footprint where the expected change is below this (levels) carry no evidence.
MIN_CONTRAST = 6.0
# At least this many footprint pixels with evidence.
MIN_PIXELS = 32


def mirrored(obj: np.ndarray, line: int) -> np.ndarray:
    """``obj`` flipped about row ``line`` (pixel rows ``line + d <- line - d``), only below it."""
    h = obj.shape[0]
    out = np.zeros_like(obj)
    rows = np.arange(line + 1, h)
    source = 2 * line - rows
    ok = (source >= 0) & (source < h)
    out[rows[ok]] = obj[source[ok]]
    return out


def _mirrored_image(frame: np.ndarray, line: int) -> np.ndarray:
    h = frame.shape[0]
    out = np.zeros(frame.shape, np.float32)
    rows = np.arange(line + 1, h)
    source = 2 * line - rows
    ok = (source >= 0) & (source < h)
    out[rows[ok]] = frame[source[ok]]
    return out


def reflection_region(frame: np.ndarray, background: np.ndarray, obj: np.ndarray, allowed: np.ndarray,
                      min_reflectance: float = MIN_REFLECTANCE) -> np.ndarray:
    """The object's mirror image where the frame shows it, else an empty mask.

    Args:
        frame: uint8 ``[H, W, 3]``. background: float32 ``[H, W, 3]`` (NaN where unknown).
        obj: bool ``[H, W]`` the object. allowed: bool ``[H, W]`` where the region may lie.
        min_reflectance: the smallest ``k`` accepted (the sensitivity sets it).
    Returns:
        ``[H, W]`` bool.
    """
    empty = np.zeros_like(obj)
    ys = np.nonzero(obj.any(1))[0]
    if ys.size == 0:
        return empty
    bottom, height = int(ys.max()), int(ys.max() - ys.min() + 1)
    known = np.isfinite(background[..., 0])
    image = frame.astype(np.float32)
    best: tuple[float, np.ndarray] | None = None
    for line in range(bottom, min(frame.shape[0] - 1, bottom + int(CONTACT_SEARCH * height)) + 1):
        footprint = mirrored(obj, line) & allowed & known
        if footprint.sum() < MIN_PIXELS:
            continue
        expected = (_mirrored_image(frame, line) - np.nan_to_num(background))[footprint]  # [N, 3]
        change = (image - np.nan_to_num(background))[footprint]
        strong = np.abs(expected).max(-1) > MIN_CONTRAST
        if strong.sum() < MIN_PIXELS:
            continue
        e, c = expected[strong].ravel(), change[strong].ravel()
        e, c = e - e.mean(), c - c.mean()
        denom = float(np.sqrt((e * e).sum() * (c * c).sum()))
        if denom <= 0:
            continue
        correlation = float((e * c).sum()) / denom
        reflectance = float((e * c).sum() / (e * e).sum())
        if correlation >= MIN_CORRELATION and reflectance >= min_reflectance:
            if best is None or correlation > best[0]:
                best = (correlation, footprint)
    return empty if best is None else best[1]
