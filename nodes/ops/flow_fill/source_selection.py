"""Source selection: which pixel of another frame may stand in for a hole pixel.

A traced position is a usable source when the forward and backward flows agree there (the
official forward-backward consistency test), when the 2x2 neighbourhood a bilinear sample reads
is known in that frame, and when it is not part of a thing that moves on its own (its motion
disagrees with the camera's motion around the hole: see ``flow_completion.moving_layer``).
"""
from __future__ import annotations

import numpy as np

from ....propainter_core.ops.consistency import DEFAULT_ALPHA1, DEFAULT_ALPHA2


def source_pixels(holes: np.ndarray, moving: np.ndarray | None) -> np.ndarray:
    """``[n, H, W]`` bool: pixels that may be a source, known (not in ``holes``) and not ``moving``.

    A pixel of a thing that moves on its own (a passing car, the removed person's partner) is
    known, but it is not the background the hole hides: taking it carries a ghost of that thing
    into the hole. The trace goes on through such pixels to a frame that shows the background.
    """
    known = ~holes
    return known if moving is None else known & ~moving


def safe_to_sample(known: np.ndarray) -> np.ndarray:
    """``[n, H, W]`` bool: the 2x2 neighbourhood a bilinear sample at ``(y, x)`` reads is all known."""
    safe = known.copy()
    safe[:, :, :-1] &= known[:, :, 1:]
    safe[:, :-1, :] &= known[:, 1:, :]
    safe[:, :-1, :-1] &= known[:, 1:, 1:]
    return safe


def consistent(motion: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``[K]`` bool: a step ``motion [K, 2]`` and the flow ``back [K, 2]`` at its end cancel out.

    The official forward-backward test: ``|m + b|^2 < a1 (|m|^2 + |b|^2) + a2``.
    """
    mismatch = ((motion + back) ** 2).sum(1)
    bound = DEFAULT_ALPHA1 * ((motion ** 2).sum(1) + (back ** 2).sum(1)) + DEFAULT_ALPHA2
    return mismatch < bound
