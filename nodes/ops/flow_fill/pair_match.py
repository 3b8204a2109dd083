"""Pair match: a hole pixel's nearest forward and backward sources, moved to where they show the same thing.

A trace through the hole follows the completed flow, which inside the hole is a little off: a
quarter of a pixel per frame costs about 2 dB on grass or fur (RESULTS.md, issue 13 session 7). A
per-step bias of the flow carries a forward trace one way and a backward trace the other, so the
nearest source before and the nearest source after the frame land apart by the sum of their
errors, with the truth between them (session 9 measured the sign: their truth-matched shifts point
opposite ways 1.3 to 4 times as often as the same way). Their patches are matched against each
other: the offset ``s`` that makes them agree is split by the number of steps of each trace, so
the forward source moves by ``s * d_f / (d_f + d_b)`` and the backward one by
``-s * d_b / (d_f + d_b)``, the split a constant bias per step gives.

A hidden part of a thing that moves on its own follows a flow interpolated from its visible
part, and its traces land several px apart (4 to 12 px after 8 steps on car-shadow, camel and
kite-surf; session 14): the search reaches :data:`PAIR_REACH` px. Over that reach one pixel's
patches alone often match a wrong place; the drift is shared by neighbouring pixels (their traces
follow nearly the same flows), so each offset's cost is averaged over the hole pixels around the
pixel (:data:`AGGREGATE_SIGMA`) before the best one is taken.
"""
from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np

from .numeric import sample, squared_length
from .settings import check_cancel

# Grey patches of this side are compared; offsets of whole px within +-PAIR_REACH are tried, then
# refined by a parabola through the costs. A larger offset costs (1 + SHIFT_COST * |s|^2) more, so
# flat or repetitive patches keep the traces' own landing. Each offset's cost is a Gaussian mean
# of width AGGREGATE_SIGMA px over the neighbouring hole pixels that have a pair. On the issue's
# bench (session 14) against the session-9 matcher (2 px, no mean): 4 px alone, ellipse holes
# +0.09 dB; with the mean over 4 px, +0.10 (cows / car-shadow / blackswan +0.39 / +0.27 / +0.43),
# object-shaped holes 0.00; 7 px no better, 11-px patches lower (bench/RESULTS.md).
PAIR_PATCH = 7
PAIR_REACH = 4
AGGREGATE_SIGMA = 4.0
SHIFT_COST = 0.008
# Pixels are matched in bands of whole rows with at most this many pixels each, so that a large hole
# in a large frame does not hold every pixel's patches at once (about 1.6 kB a pixel); a band also
# reads the pixels within _BAND_MARGIN rows of it: twice the reach of the Gaussian mean (OpenCV's
# kernel for a float image has radius 4 sigma), for the two averaged stages.
BAND_PIXELS = 131072
# Patches are gathered for this many pixels at a time.
_GATHER = 8192
_BAND_MARGIN = 2 * int(np.ceil(4 * AGGREGATE_SIGMA))
_HALF = PAIR_PATCH // 2
_OFFSETS = np.array([(dy, dx) for dy in range(-_HALF, _HALF + 1) for dx in range(-_HALF, _HALF + 1)],
                    np.float32)  # [P * P, 2] (y, x)
_NEAR = np.ones((PAIR_PATCH, PAIR_PATCH), np.uint8)


class PairMatcher:
    """The window's frames in grey, stacked, and where a thing moving on its own lies near each pixel.

    ``frames [n, H, W, 3]`` float32; ``moving_core [n, H, W]`` bool (the moving layers without their
    grown margin). Made once per window, used for every output frame.
    """

    def __init__(self, frames: np.ndarray, moving_core: np.ndarray):
        n, h, w = frames.shape[:3]
        self.height = h
        # All frames as one tall image: a sample of frame i at row y reads row i * H + y.
        # (The mean in float32: the same values as in float64 for the integer levels of a frame, without
        # a float64 copy of the window, 2 GB for 120 frames of 1080p.)
        self.grey = frames.mean(3, dtype=np.float32).reshape(n * h, w)
        self.near_thing = np.stack([cv2.dilate(m.astype(np.uint8), _NEAR).astype(bool) for m in moving_core])

    def match(self, first_forward: np.ndarray, first_backward: np.ndarray, steps_forward: np.ndarray,
              steps_backward: np.ndarray, ys: np.ndarray | None = None, xs: np.ndarray | None = None,
              should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the nearest forward and backward sources should be read.

        ``first_* [K, 3]`` float32: window frame (-1: no source), y, x of each hole pixel's nearest
        source in that direction, ``steps_* [K]`` its trace's number of steps (see
        :func:`.propagation.trace`). Pixels with both sources are moved (see the module's
        docstring), except where exactly one of the two patches touches a thing moving on its own:
        a background pixel's source beside a car does not show what the other source shows, and
        matching them pulls both off (soapbox and car-shadow lost 0.2-0.3 dB that way).
        ``ys``, ``xs [K]``: the hole pixels' own places, over which the costs are averaged (None:
        each pixel's patches decide alone). ``should_cancel`` is polled for every row of offsets.

        Returns:
            the moved ``[K, 3]`` forward and backward landings and ``[K]`` bool, which were moved.
        """
        moved_f, moved_b = first_forward.copy(), first_backward.copy()
        pair = (first_forward[:, 0] >= 0) & (first_backward[:, 0] >= 0)
        pair[pair] = self._near(first_forward[pair]) == self._near(first_backward[pair])
        if not pair.any():
            return moved_f, moved_b, pair
        f, b = first_forward[pair], first_backward[pair]
        share_f = (steps_forward[pair] / (steps_forward[pair] + steps_backward[pair])).astype(np.float32)
        places = None if ys is None or xs is None else (ys[pair], xs[pair])
        offset = np.empty((f.shape[0], 2), np.float32)  # (y, x)
        for core, context in _bands(None if places is None else places[0], f.shape[0]):
            at = (places[0][context], places[1][context]) if places is not None else None
            found = self._offsets(f[context], b[context], share_f[context], at, should_cancel)
            offset[core] = found[np.searchsorted(context, core)]
        moved_f[pair, 1:] += offset * share_f[:, None]
        moved_b[pair, 1:] -= offset * (1.0 - share_f)[:, None]
        return moved_f, moved_b, pair

    def _offsets(self, f: np.ndarray, b: np.ndarray, share_f: np.ndarray,
                 places: tuple[np.ndarray, np.ndarray] | None,
                 should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
        """``[M, 2]`` (y, x): the offset between the landings ``f`` and ``b [M, 3]`` that makes their
        patches agree (see :meth:`match`); ``places``: the pixels' ``(ys, xs)`` to average the costs over."""
        share_b = 1.0 - share_f
        spread = None if places is None else _Spread(places[0], places[1], AGGREGATE_SIGMA)

        def penalised(ssd: np.ndarray, shift: np.ndarray) -> np.ndarray:
            mean = ssd if spread is None else spread(ssd)
            return mean * (1.0 + SHIFT_COST * squared_length(shift))

        # The whole-px offset: the forward source's surroundings within the reach, cut once, against
        # the backward source's patch (an offset s moves the forward patch by s against the backward
        # one: the same comparison as moving each by its share, up to where the patches lie).
        ahead = self._window(f, _HALF + PAIR_REACH)  # [M, P + 2R, P + 2R]
        behind = self._window(b, _HALF)  # [M, P, P]
        reach = np.arange(-PAIR_REACH, PAIR_REACH + 1, dtype=np.float32)
        best = np.zeros((f.shape[0], 2), np.float32)
        least = np.full(f.shape[0], np.inf, np.float32)
        for iy, sy in enumerate(reach):
            check_cancel(should_cancel)
            for ix, sx in enumerate(reach):
                shift = np.array([sy, sx], np.float32)
                difference = ahead[:, iy:iy + PAIR_PATCH, ix:ix + PAIR_PATCH] - behind
                cost = penalised(np.einsum("ijk,ijk->i", difference, difference), shift)
                better = cost < least
                least[better], best[better] = cost[better], shift
        # Refined around it with each source moved by its share, as the landings will be.
        around = np.array([-1.0, 0.0, 1.0], np.float32)
        cost = np.empty((3, 3, f.shape[0]), np.float32)
        for iy, sy in enumerate(around):
            check_cancel(should_cancel)
            for ix, sx in enumerate(around):
                shift = best + np.array([sy, sx], np.float32)
                ssd = np.empty(f.shape[0], np.float32)
                for start in range(0, f.shape[0], _GATHER):
                    part = slice(start, start + _GATHER)
                    difference = (self._patches(f[part], shift[part] * share_f[part, None])
                                  - self._patches(b[part], -shift[part] * share_b[part, None]))
                    ssd[part] = np.einsum("ij,ij->i", difference, difference)
                cost[iy, ix] = penalised(ssd, shift)
        return best + _best_offset(cost, around)

    def _window(self, landing: np.ndarray, half: int) -> np.ndarray:
        """Grey ``[M, 2 * half + 1, 2 * half + 1]`` squares centred on ``landing [M, 3]``."""
        steps = np.arange(-half, half + 1, dtype=np.float32)
        out = np.empty((landing.shape[0], steps.size, steps.size), np.float32)
        for start in range(0, landing.shape[0], _GATHER):  # the gather's maps stay small
            part = landing[start:start + _GATHER, :, None, None]  # [m, 3, 1, 1]
            out[start:start + part.shape[0]] = self._read(part[:, 0], part[:, 1] + steps[None, :, None],
                                                          part[:, 2] + steps[None, None, :])
        return out

    def _patches(self, landing: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Grey ``[M, P * P]`` patches around ``landing [M, 3]`` moved by ``shift [M, 2]`` (y, x)."""
        return self._read(landing[:, 0:1], landing[:, 1:2] + shift[:, 0:1] + _OFFSETS[None, :, 0],
                          landing[:, 2:3] + shift[:, 1:2] + _OFFSETS[None, :, 1])

    def _read(self, frame: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Grey samples of window frames ``frame`` at ``(y, x)`` (arrays that broadcast together), each kept
        inside its own frame of the stack: the frame's edge repeats, as a single frame's would."""
        h, w = self.height, self.grey.shape[1]
        rows, cols = np.broadcast_arrays(np.clip(y, 0, h - 1) + frame * h, np.clip(x, 0, w - 1))
        return sample(self.grey[..., None], rows.ravel(), cols.ravel()).reshape(rows.shape)

    def _near(self, landing: np.ndarray) -> np.ndarray:
        frame = landing[:, 0].astype(np.int64)
        y = np.clip(np.rint(landing[:, 1]), 0, self.height - 1).astype(np.int64)
        x = np.clip(np.rint(landing[:, 2]), 0, self.near_thing.shape[2] - 1).astype(np.int64)
        return self.near_thing[frame, y, x]


def _bands(rows: np.ndarray | None, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split ``count`` paired pixels into bands of at most :data:`BAND_PIXELS`: ``(core, context)`` index arrays.

    Without ``rows`` (no averaging over neighbours) the bands are runs of indices and a band is its own
    context. With ``rows [M]`` (each pixel's row) a band is a run of whole rows, and its context adds
    every pixel within :data:`_BAND_MARGIN` rows of it: the pixels whose costs its offsets depend on,
    through the two averaged stages of :meth:`PairMatcher._offsets`. The offsets are then the same as
    for all pixels at once.
    """
    if rows is None:
        every = np.arange(count)
        for start in range(0, every.size, BAND_PIXELS):
            yield every[start:start + BAND_PIXELS], every[start:start + BAND_PIXELS]
        return
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    start, total = 0, ordered.size
    while start < total:
        stop = total
        if total - start > BAND_PIXELS:
            # Up to the row that would overrun the budget; one row at least.
            stop = int(np.searchsorted(ordered, ordered[start + BAND_PIXELS], "left"))
            if stop <= start:
                stop = int(np.searchsorted(ordered, ordered[start], "right"))
        low = int(np.searchsorted(ordered, ordered[start] - _BAND_MARGIN, "left"))
        high = int(np.searchsorted(ordered, ordered[stop - 1] + _BAND_MARGIN, "right"))
        yield np.sort(order[start:stop]), np.sort(order[low:high])
        start = stop


class _Spread:
    """A per-pixel value replaced by its Gaussian mean over the neighbouring pixels ``(ys, xs)`` that have one."""

    def __init__(self, ys: np.ndarray, xs: np.ndarray, sigma: float):
        self.sigma = sigma
        self.ys, self.xs = ys - ys.min(), xs - xs.min()
        self.plane = np.zeros((int(self.ys.max()) + 1, int(self.xs.max()) + 1), np.float32)
        self.plane[self.ys, self.xs] = 1.0
        self.weight = np.maximum(self._blur()[self.ys, self.xs], 1e-6)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        self.plane[self.ys, self.xs] = values
        return self._blur()[self.ys, self.xs] / self.weight

    def _blur(self) -> np.ndarray:
        # Nothing beyond the plane (not its reflection): the mean does not depend on the plane's extent.
        return cv2.GaussianBlur(self.plane, (0, 0), self.sigma, borderType=cv2.BORDER_CONSTANT)


def _best_offset(cost: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """``[M, 2]`` (y, x): the offset of least ``cost [S, S, M]`` over the grid ``reach``, refined
    per axis by a parabola through it and its two neighbours (where it has both)."""
    size, m = reach.size, cost.shape[2]
    best = cost.reshape(size * size, m).argmin(0)
    iy, ix = best // size, best % size
    every = np.arange(m)
    centre = cost[iy, ix, every]

    def vertex(before: np.ndarray, after: np.ndarray, inner: np.ndarray) -> np.ndarray:
        curve = before - 2.0 * centre + after
        step = 0.5 * (before - after) / np.where(curve > 1e-6, curve, 1.0)
        return np.where(inner & (curve > 1e-6), np.clip(step, -0.5, 0.5), 0.0)

    inner_y, inner_x = (iy > 0) & (iy < size - 1), (ix > 0) & (ix < size - 1)
    dy = vertex(cost[np.maximum(iy - 1, 0), ix, every], cost[np.minimum(iy + 1, size - 1), ix, every], inner_y)
    dx = vertex(cost[iy, np.maximum(ix - 1, 0), every], cost[iy, np.minimum(ix + 1, size - 1), every], inner_x)
    return np.stack([reach[iy] + dy, reach[ix] + dx], 1).astype(np.float32)
