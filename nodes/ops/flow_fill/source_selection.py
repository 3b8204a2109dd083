"""Source selection: which pixel of another frame may stand in for a hole pixel.

A traced position is a usable source when the forward and backward flows agree there (the
official forward-backward consistency test), when the 2x2 neighbourhood a bilinear sample reads
is known in that frame, and when it is not part of a thing that moves on its own (its motion
disagrees with the camera's motion around the hole: see ``flow_completion.moving_layer``).
"""
from __future__ import annotations

import cv2
import numpy as np

from ....propainter_core.ops.consistency import DEFAULT_ALPHA1, DEFAULT_ALPHA2
from .numeric import carried_step, grown_box, push_pull, squared_length


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


def consistent(motion: np.ndarray, back: np.ndarray, slack: float | np.ndarray = 1.0) -> np.ndarray:
    """``[K]`` bool: a step ``motion [K, 2]`` and the flow ``back [K, 2]`` at its end cancel out.

    The official forward-backward test: ``|m + b|^2 < a1 (|m|^2 + |b|^2) + a2``, with the bound
    multiplied by ``slack`` (1: the official test; or ``[K]``, one per step).
    """
    mismatch = squared_length(motion + back)
    bound = DEFAULT_ALPHA1 * (squared_length(motion) + squared_length(back)) + DEFAULT_ALPHA2
    return mismatch < slack * bound


def carried_onto(mask: np.ndarray, to_previous: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``[K]`` bool: the pixels ``(ys, xs)`` whose step along ``to_previous [H, W, 2]`` reads
    ``mask [H, W]`` of the previous frame (any pixel of its bilinear sample; off the frame: False).

    The step is the one the carried fill and the temporal blend take
    (:func:`.numeric.carried_step`). A background pixel whose step reads a thing moving on its
    own there would carry that thing's colour into the hole, a little further each frame.
    """
    qy, qx, inside = carried_step(to_previous, ys, xs)
    qy, qx = qy[inside], qx[inside]
    onto = np.zeros(ys.size, bool)
    for ry in (np.floor(qy), np.ceil(qy)):
        for rx in (np.floor(qx), np.ceil(qx)):
            onto[inside] |= mask[ry.astype(np.int64), rx.astype(np.int64)]
    return onto


def hole_layer(moving: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the hole pixels that belong to the moving layer, not to the background.

    A hole may hide background next to a moving thing (its shadow's place, the space it just
    left) or a part of that thing itself (a hole over a walking animal's back). Each connected
    part of the hole takes the layer that most of the known pixels around it belong to
    (more than :data:`MOVING_MAJORITY`): surrounded by the moving thing, it is part of it, and
    that thing's pixels are its sources; touching it on one side only, it is background.
    """
    layer = np.zeros_like(hole)
    if not moving.any() or not hole.any():
        return layer
    count, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    ring = _ring(hole)
    # The ring pixel's part: the label of the hole part it borders (the largest label nearby).
    near = cv2.dilate(labels.astype(np.float32), _RING).astype(np.int64)
    totals = np.bincount(near[ring], minlength=count)
    movers = np.bincount(near[ring & moving], minlength=count)
    owned = movers > MOVING_MAJORITY * np.maximum(totals, 1)
    owned[0] = False
    return owned[labels] & hole


MOVING_MAJORITY = 0.6
_RING = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def nearby_layer(moving: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the hole pixels whose nearest ring is mostly the moving layer.

    :func:`hole_layer` gives each connected part of the hole one vote; a hole lying half over a
    thing and half over the background (a drifting hole over a camel's back) loses the thing's
    half that way. Here the moving share of the ring (the known pixels around the hole) is
    interpolated into the hole by a push-pull pyramid, so each pixel hears most from the ring
    nearest to it, and the share above :data:`MOVING_MAJORITY` decides.
    """
    layer = np.zeros_like(hole)
    if not moving.any() or not hole.any():
        return layer
    ring = _ring(hole)
    y0, y1, x0, x1 = grown_box(hole, _RING.shape[0] // 2 + 1)  # the ring and a pixel
    weight = ring[y0:y1, x0:x1].astype(np.float32)
    share = push_pull((moving[y0:y1, x0:x1] * weight)[..., None], weight)[..., 0]
    layer[y0:y1, x0:x1] = (share > MOVING_MAJORITY) & hole[y0:y1, x0:x1]
    return layer


def _ring(hole: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the known pixels within :data:`_RING`'s reach of the hole."""
    return cv2.dilate(hole.astype(np.uint8), _RING).astype(bool) & ~hole
