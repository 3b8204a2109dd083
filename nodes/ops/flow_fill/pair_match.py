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
"""
from __future__ import annotations

import cv2
import numpy as np

from .numeric import sample

# Grey patches of this side are compared; offsets of whole px within +-PAIR_REACH are tried, then
# refined by a parabola through the costs. A larger offset costs (1 + SHIFT_COST * |s|^2) more, so
# flat or repetitive patches keep the traces' own landing.
PAIR_PATCH = 7
PAIR_REACH = 2
SHIFT_COST = 0.008
_HALF = PAIR_PATCH // 2
_OFFSETS = np.array([(dy, dx) for dy in range(-_HALF, _HALF + 1) for dx in range(-_HALF, _HALF + 1)],
                    np.float32)  # [P, 2] (y, x)
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
        self.grey = frames.mean(3).reshape(n * h, w).astype(np.float32)
        self.near_thing = np.stack([cv2.dilate(m.astype(np.uint8), _NEAR).astype(bool) for m in moving_core])

    def match(self, first_forward: np.ndarray, first_backward: np.ndarray, steps_forward: np.ndarray,
              steps_backward: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the nearest forward and backward sources should be read.

        ``first_* [K, 3]`` float32: window frame (-1: no source), y, x of each hole pixel's nearest
        source in that direction, ``steps_* [K]`` its trace's number of steps (see
        :func:`.propagation.trace`). Pixels with both sources are moved (see the module's
        docstring), except where exactly one of the two patches touches a thing moving on its own:
        a background pixel's source beside a car does not show what the other source shows, and
        matching them pulls both off (soapbox and car-shadow lost 0.2-0.3 dB that way).

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
        share_b = 1.0 - share_f
        reach = np.arange(-PAIR_REACH, PAIR_REACH + 1, dtype=np.float32)
        cost = np.empty((reach.size, reach.size, f.shape[0]), np.float32)
        for iy, sy in enumerate(reach):
            for ix, sx in enumerate(reach):
                shift = np.array([sy, sx], np.float32)
                ahead = self._patches(f, shift * share_f[:, None])
                behind = self._patches(b, -shift * share_b[:, None])
                cost[iy, ix] = ((ahead - behind) ** 2).sum(1) * (1.0 + SHIFT_COST * (sy * sy + sx * sx))
        offset = _best_offset(cost, reach)  # [M, 2] (y, x)
        moved_f[pair, 1:] += offset * share_f[:, None]
        moved_b[pair, 1:] -= offset * share_b[:, None]
        return moved_f, moved_b, pair

    def _patches(self, landing: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Grey ``[M, P]`` patches around ``landing [M, 3]`` moved by ``shift [M, 2]`` (y, x)."""
        h, w = self.height, self.grey.shape[1]
        y = landing[:, 1:2] + shift[:, 0:1] + _OFFSETS[None, :, 0]
        x = landing[:, 2:3] + shift[:, 1:2] + _OFFSETS[None, :, 1]
        # Kept inside its own frame of the stack (the frame's edge repeats, as a single frame's would).
        rows = np.clip(y, 0, h - 1) + landing[:, 0:1] * h
        return sample(self.grey[..., None], rows.ravel(), np.clip(x, 0, w - 1).ravel()).reshape(y.shape)

    def _near(self, landing: np.ndarray) -> np.ndarray:
        frame = landing[:, 0].astype(np.int64)
        y = np.clip(np.rint(landing[:, 1]), 0, self.height - 1).astype(np.int64)
        x = np.clip(np.rint(landing[:, 2]), 0, self.near_thing.shape[2] - 1).astype(np.int64)
        return self.near_thing[frame, y, x]


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
