"""Blending: steadying the fill along the motion and removing the seam around the hole.

The fill is blended half and half with the previous output frame carried along the flow (a
recursive filter along the motion), then shifted so it meets the pixels around the hole without
a step: sources from other frames differ in light, haze and spray, and the jump measured around
the outline is spread over the hole as a membrane, as in Poisson cloning.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .numeric import carried_step, grown_box, membrane, sample, window_mean
from .settings import check_cancel

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
    qy, qx, inside = carried_step(to_previous, ys, xs)
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
    y0, y1, x0, x1 = grown_box(hole, 3)
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


# Conjugate-gradient steps of the seam removal and the relative residual it stops at (the
# steps between regions are gone well before; what is left is the far, smooth spread).
_SEAM_ITERATIONS = 60
_SEAM_TOLERANCE = 1e-2
# The solve polls the cancel every this many steps.
_CANCEL_EVERY = 10


def remove_seams(frame: np.ndarray, hole: np.ndarray, regions: np.ndarray, ignore: np.ndarray | None = None,
                 should_cancel: Callable[[], bool] | None = None) -> None:
    """Gradient-domain blend between source regions of the fill (in place).

    ``regions [H, W]`` int labels say which kind of source each hole pixel came from (later
    frames, earlier frames, the carried fill, the spatial fill). Within a region, the fill's own
    gradients are kept; across a boundary between two regions they are unreliable (two times,
    two exposures), so the gradient there is estimated from either side instead, and the fill
    that best matches those gradients with the pixels around the hole held (a Poisson equation,
    Dirichlet boundary, as in Poisson image editing) is solved for by conjugate gradients. A
    step between regions is spread smoothly over the hole, so that neighbouring pixels never
    jump between times with different exposure; a fill without one is returned unchanged.

    Args:
        frame: ``[H, W, 3]`` float32, the fill inside ``hole``. hole: ``[H, W]`` bool.
        regions: ``[H, W]`` int, read inside the hole.
        ignore: ``[H, W]`` bool, known pixels that are not the background (a thing moving beside
            the hole): they hold nothing (a free boundary), like the frame's edge.
        should_cancel: polled after the guidance and every :data:`_CANCEL_EVERY` steps of the
            solve (over a fifth of a 1080p frame the whole takes about 1.5 s).
    """
    box = grown_box(hole, 1)
    if box is None:
        return
    y0, y1, x0, x1 = box
    box, inside, label = frame[y0:y1, x0:x1], hole[y0:y1, x0:x1], regions[y0:y1, x0:x1]
    # Guidance for each hole pixel p and neighbour q: g_pq = F_p - F_q within a region and
    # across the hole's outline. Across a boundary between two regions the step F_p - F_q mixes
    # two sources; it is replaced by the mean of the
    # gradients on either side, each measured within its own region (p' behind p, q' beyond
    # q), or 0 where those are not available. Known neighbours contribute their value.
    known_label = np.iinfo(np.int16).min
    free = known_label + 1  # the frame's edge and ignored pixels: no region, no constraint
    lab = np.where(inside, label, known_label).astype(np.int16)
    if ignore is not None:
        lab = np.where(ignore[y0:y1, x0:x1] & ~inside, free, lab).astype(np.int16)
    b = np.zeros_like(box)
    count = np.zeros(inside.shape, np.float32)  # neighbours that take part, per pixel
    seams = False
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        q_in = _shift(inside, dy, dx, False)
        q_val = _shift(box, dy, dx, 0.0)
        q_lab = _shift(lab, dy, dx, free)
        p_back, p_back_lab = _shift(box, -dy, -dx, 0.0), _shift(lab, -dy, -dx, free)
        q_next, q_next_lab = _shift(box, 2 * dy, 2 * dx, 0.0), _shift(lab, 2 * dy, 2 * dx, free)
        # The outline keeps the fill's own step (match_boundary has removed what stands out of
        # the texture; holding the ring's noise here would make the fill flicker).
        same = (q_lab == lab) | (q_lab == known_label)
        across = inside & ~same & (q_lab != free)
        count += (q_lab != free)
        seams |= bool(across.any())
        ok_p = (p_back_lab == lab)[..., None]
        ok_q = (q_next_lab == q_lab)[..., None]
        estimate = (np.where(ok_p, p_back - box, 0.0) + np.where(ok_q, q_val - q_next, 0.0)) / \
            np.maximum(ok_p.astype(np.float32) + ok_q, 1.0)
        guidance = np.where(same[..., None], box - q_val, estimate)
        b += np.where((inside & (q_lab != free))[..., None], guidance, 0.0)
        b += np.where((inside & ~q_in & (q_lab == known_label))[..., None], q_val, 0.0)
    if not seams:
        return
    check_cancel(should_cancel)

    # Conjugate gradients on the hole's pixels only: x [3, K] (a row per channel: numpy's sums along
    # a row are pairwise and fast, down a column sequential and slow), neighbours by index (K = outside).
    iy, ix = np.nonzero(inside)
    k = iy.size
    index = np.full(inside.shape, k, np.int64)
    index[iy, ix] = np.arange(k)
    neighbours = [_shift(index, dy, dx, k)[iy, ix] for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
    degree = count[iy, ix].astype(np.float32)  # [K]
    if not (degree > 0).any() or not ((lab == known_label) & ~inside).any():
        return  # nothing holds the solution in place (no known background around the hole)
    rhs = np.ascontiguousarray(b[iy, ix].T, dtype=np.float32)  # [3, K]
    x = np.ascontiguousarray(box[iy, ix].T, dtype=np.float32)
    padded = np.zeros((3, k + 1), np.float32)

    def apply(u: np.ndarray) -> np.ndarray:
        padded[:, :k] = u
        total = degree * u
        for column in neighbours:
            total -= np.take(padded, column, axis=1)
        return total

    r = rhs - apply(x)
    p = r.copy()
    rr = (r * r).sum(1)
    start = float(np.sqrt(rr.sum()))
    for step in range(_SEAM_ITERATIONS):
        if float(np.sqrt(rr.sum())) <= _SEAM_TOLERANCE * max(start, 1e-6):
            break
        if step % _CANCEL_EVERY == 0:
            check_cancel(should_cancel)
        ap = apply(p)
        alpha = (rr / np.maximum((p * ap).sum(1), 1e-12))[:, None]
        x += alpha * p
        r -= alpha * ap
        new = (r * r).sum(1)
        p = r + (new / np.maximum(rr, 1e-12))[:, None] * p
        rr = new
    box[iy, ix] = x.T


def _shift(image: np.ndarray, dy: int, dx: int, fill: float | bool | int) -> np.ndarray:
    """``out[y, x] = image[y + dy, x + dx]``, ``fill`` where that falls outside."""
    out = np.full_like(image, fill)
    h, w = image.shape[:2]
    out[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        image[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out
