"""Propagation: every hole pixel is traced along the completed flow, forward and backward in time.

A pixel is followed until it lands on a usable source (see :mod:`.source_selection`) in some
frame: the background revealed as the object moves. Positions are composed along the whole path
and the colour is sampled once, so far sources do not blur. Both directions are blended by
inverse temporal distance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numeric import sample
from .source_selection import consistent, safe_to_sample


@dataclass
class Window:
    """Frames ``[a, b)`` of the clip with the completed flows between them.

    ``forward[i]`` maps frame ``a+i`` to ``a+i+1`` (defined on frame ``a+i``), ``backward[i]``
    maps ``a+i+1`` to ``a+i`` (defined on frame ``a+i+1``); both ``[n-1, H, W, 2]``.
    """

    start: int
    frames: np.ndarray   # [n, H, W, 3] float32
    safe: np.ndarray     # [n, H, W] bool, see safe_to_sample
    forward: np.ndarray  # [n-1, H, W, 2]
    backward: np.ndarray  # [n-1, H, W, 2]


def make_window(frames: np.ndarray, holes: np.ndarray, flows: dict[int, tuple[np.ndarray, np.ndarray]],
                first: int) -> Window:
    """The window of frames ``first .. first + len(holes) - 1``; ``holes`` are theirs (dilated)."""
    last = first + len(holes)
    h, w = frames.shape[1:3]
    pairs = range(first, last - 1)
    empty = np.zeros((0, h, w, 2), np.float32)
    return Window(
        start=first,
        frames=frames[first:last].astype(np.float32),
        safe=safe_to_sample(~holes),
        forward=np.stack([flows[p][0] for p in pairs]) if len(pairs) else empty,
        backward=np.stack([flows[p][1] for p in pairs]) if len(pairs) else empty,
    )


def trace(win: Window, local: int, ys: np.ndarray, xs: np.ndarray, direction: int,
          max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Follow hole pixels of window frame ``local`` along the flow until they reach known pixels.

    Returns:
        colours ``[K, 3]`` float32 and temporal distance ``[K]`` (``inf`` where nothing found).
    """
    n, h, w = win.frames.shape[:3]
    k = ys.size
    colour = np.zeros((k, 3), np.float32)
    distance = np.full(k, np.inf, np.float32)
    active = np.arange(k)
    py, px = ys.astype(np.float32), xs.astype(np.float32)
    step_flow, check_flow = (win.forward, win.backward) if direction > 0 else (win.backward, win.forward)
    for step in range(1, max_steps + 1):
        src = local + (step - 1) * direction
        dst = src + direction
        if dst < 0 or dst >= n or active.size == 0:
            break
        pair = src if direction > 0 else dst  # flow index of the pair (src, dst)
        motion = sample(step_flow[pair], py, px)
        ny, nx = py + motion[:, 1], px + motion[:, 0]
        back = sample(check_flow[pair], ny, nx)
        inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
        alive = inside & consistent(motion, back)
        cy = np.clip(ny, 0, h - 1).astype(np.int64)  # floor for in-frame points
        cx = np.clip(nx, 0, w - 1).astype(np.int64)
        known = win.safe[dst][cy, cx]
        found = alive & known
        if found.any():
            colour[active[found]] = sample(win.frames[dst], ny[found], nx[found])
            distance[active[found]] = step
        keep = alive & ~known
        active, py, px = active[keep], ny[keep], nx[keep]
    return colour, distance


def propagate(win: Window, local: int, hole: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Bidirectional propagation into ``hole [H, W]`` of window frame ``local``.

    Returns:
        values ``[K, 3]`` and a bool ``[K]`` saying which of the ``K`` hole pixels (in
        ``np.nonzero`` order) were reached.
    """
    ys, xs = np.nonzero(hole)
    col_f, dist_f = trace(win, local, ys, xs, +1, max_steps)
    col_b, dist_b = trace(win, local, ys, xs, -1, max_steps)
    w_f = np.where(np.isfinite(dist_f), 1.0 / dist_f, 0.0).astype(np.float32)[:, None]
    w_b = np.where(np.isfinite(dist_b), 1.0 / dist_b, 0.0).astype(np.float32)[:, None]
    total = w_f + w_b
    values = (col_f * w_f + col_b * w_b) / np.maximum(total, 1e-12)
    return values, total[:, 0] > 0
