"""Propagation: every hole pixel is traced along the completed flow, forward and backward in time.

A pixel is followed until it lands on a usable source (see :mod:`.source_selection`) in some
frame: the background revealed as the object moves. Positions are composed along the whole path
and the colour is sampled once, so far sources do not blur. Both directions are blended by
inverse temporal distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from .numeric import channel_sum, sample, squared_length
from .pair_match import PairMatcher
from .flow_completion import LAYER_GROW, PairFlows, unsure_layer
from .settings import check_cancel
from .source_selection import consistent, hole_layer, safe_to_sample, source_pixels

# Sources kept per direction and the least number of frames between two of them: a thing
# passing over the spot shows in a few frames, the background in most (see choose_sources).
CANDIDATES = 3
CANDIDATE_GAP = 2
# Candidates within this many levels (max over channels) of the medoid are averaged.
AGREE = 24.0
# Agreeing candidates are weighted by 1 / distance ** this: the nearer source in time is the
# more exact one (each step of a trace through the hole adds the completed flow's error).
DISTANCE_POWER = 2.0
# In the vote for the medoid each candidate counts 1 / distance ** this: two far sources that agree
# (traced through many frames of completed flow onto the same wrong place, or both under a shadow
# that moves with a car) no longer outvote a near one. Unweighted (0): 20.94 / 22.43 dB on the issue's
# bench; 1: 21.00 / 22.61 (held out 20.21 / 22.33 -> 20.32 / 22.40); 0.5 and 2 in between
# (bench/RESULTS.md, issue 13 session 19).
VOTE_POWER = 1.0
# In the hole a moving thing's own flow is interpolated (flow_completion.complete_own_flow, in each
# direction from what that direction's frame shows of the thing), not measured: two such flows
# disagree by more than measured ones do, with no occlusion between them. A step along that motion
# passes the forward-backward test within (1 + OWN_CHECK_SLACK x the number of its two flows read in
# a hole) times the official bound on the squared mismatch: 2.5x from or into the hole, 4x (twice
# the length) from a hole pixel to a hole pixel; the official bound elsewhere and for the
# background's flows. Held to the official bound, a hidden part of a car or a player often found no
# source in that direction. On the bench (session 22), ellipse / object-shaped holes:
# official bound 21.24 / 22.95 dB (held out 20.56 / 22.69); 4x between hole pixels only 21.35 /
# 22.97 (20.64 / 22.71); and 2.5x from or into the hole 21.39 / 22.98 (20.70 / 22.71). Between
# hole pixels in the source traces only (not in those that decide the thing's pixels), 2.25x / 4x /
# 9x: 21.31 / 22.95, 21.34 / 22.94, 21.34 / 22.94 (soapbox ellipse -0.27 at 9x); no test at all for
# a step between holes, the background's too: 21.33 / 22.94, soapbox ellipse -0.37 (bench/RESULTS.md).
OWN_CHECK_SLACK = 1.5
# Whether a hole pixel hides the moving layer is read where its trace lands this many px away
# from the hole or more: next to the hole the flow, and so the layers, are disturbed by it.
LANDING_DEPTH = 6
_DEEP = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * LANDING_DEPTH + 1, 2 * LANDING_DEPTH + 1))
# A moving thing crosses the hole where its own motion differs from the hole's (the shift of the
# hole's part to the next / previous frame) by more than this many px per frame. Measured on the
# issue's bench (RESULTS.md, issue 13 session 6): 1 px let the ghost failure-mode test's hole (which
# travels with the red block) take the block; a bound growing with the hole's own shift (0.3 of it,
# for a hole that travels with a thing that grows or turns) put drift-straight's object-shaped
# holes 0.6 dB lower, below Telea.
CROSSING_PX = 2.0


@dataclass
class Window:
    """Frames ``[a, b)`` of the clip with the completed flows between them.

    ``forward[i]`` maps frame ``a+i`` to ``a+i+1`` (defined on frame ``a+i``), ``backward[i]``
    maps ``a+i+1`` to ``a+i`` (defined on frame ``a+i+1``); ``n - 1`` flows ``[H, W, 2]`` each,
    indexed by pair. :func:`make_window` hands over the pairs' own arrays in lists, not a stacked
    copy: a window of 120 full 1080p frames holds 119 pairs of four flows, 7.9 GB once.
    """

    start: int
    frames: np.ndarray   # [n, H, W, 3] float32
    safe: np.ndarray     # [n, H, W] bool, see safe_to_sample: known and not moving where the frames change
    safe_all: np.ndarray  # [n, H, W] bool: known, moving or not (sources of a moving layer's pixels)
    moving: np.ndarray   # [n, H, W] bool, pixels that move on their own (see source_selection)
    forward: Sequence[np.ndarray]  # n-1 of [H, W, 2]
    backward: Sequence[np.ndarray]  # n-1 of [H, W, 2]
    # The same flows with the moving layer's own motion inside the hole (see
    # flow_completion.complete_own_flow); None: no moving layer anywhere, the flows above.
    own_forward: Sequence[np.ndarray] | None = None  # n-1 of [H, W, 2]
    own_backward: Sequence[np.ndarray] | None = None  # n-1 of [H, W, 2]

    _core: np.ndarray | None = field(default=None, repr=False)
    _pairs: PairMatcher | None = field(default=None, repr=False)
    _deep: np.ndarray | None = field(default=None, repr=False)

    def deep_known(self) -> np.ndarray:
        """``[n, H, W]`` bool: known pixels at least :data:`LANDING_DEPTH` px from the hole."""
        if self._deep is None:
            self._deep = np.stack([cv2.erode(k.astype(np.uint8), _DEEP).astype(bool) for k in self.safe_all])
        return self._deep

    def moving_core(self) -> np.ndarray:
        """``[n, H, W]`` bool: the moving pixels without the margin grown for shadow and blur."""
        if self._core is None:
            self._core = np.stack([cv2.erode(m.astype(np.uint8), LAYER_GROW).astype(bool) for m in self.moving])
        return self._core

    def pair_matcher(self) -> PairMatcher:
        """The window's :class:`.pair_match.PairMatcher` (made on first use)."""
        if self._pairs is None:
            self._pairs = PairMatcher(self.frames, self.moving_core())
        return self._pairs

    def moving_things(self, local: int) -> np.ndarray:
        """``[H, W]`` bool: the pixels of window frame ``local`` that show a thing moving on its own
        there: the core of its moving layer (:meth:`moving_core`, without the margin grown for
        shadow and blur) where it is no source for the background (:attr:`safe`)."""
        return self.moving_core()[local] & ~self.safe[local]

    def flows(self, direction: int, own: bool) -> tuple[Sequence[np.ndarray], Sequence[np.ndarray]]:
        """The flows a step in ``direction`` (+1/-1) follows and its check, ``own``: the moving layer's."""
        forward, backward = self.forward, self.backward
        if own and self.own_forward is not None:
            forward, backward = self.own_forward, self.own_backward
        return (forward, backward) if direction > 0 else (backward, forward)


def make_window(frames: np.ndarray, holes: np.ndarray, flows: dict[int, PairFlows], first: int,
                exclude_moving: bool = True) -> Window:
    """The window of frames ``first .. first + len(holes) - 1``; ``holes`` are theirs (dilated).

    A pixel is a source where it is known and, with ``exclude_moving``, not part of a moving layer
    of either of the frame's pairs where that pair's frames change (see
    :func:`.source_selection.source_pixels` and ``PairFlows.still_first``).
    """
    last = first + len(holes)
    pairs = range(first, last - 1)
    moving = np.zeros(holes.shape, bool)
    changing = np.zeros(holes.shape, bool)  # the moving pixels that are no source
    if exclude_moving:
        for p in pairs:
            for index, layer, still in ((p - first, flows[p].moving_first, flows[p].still_first),
                                        (p - first + 1, flows[p].moving_second, flows[p].still_second)):
                moving[index] |= layer
                changing[index] |= layer if still is None else layer & ~still
        for index in range(len(holes)):
            # The outliers beside the hole that one pair could not judge, judged with the other.
            judged = []
            if index < len(pairs):
                judged.append((flows[first + index].unsure_first, flows[first + index].changes_first))
            if index > 0:
                judged.append((flows[first + index - 1].unsure_second, flows[first + index - 1].changes_second))
            judged = [(unsure, changes) for unsure, changes in judged if unsure is not None]
            if any(unsure.any() for unsure, _ in judged):
                kept = unsure_layer([unsure for unsure, _ in judged], [changes for _, changes in judged])
                moving[index] |= kept
                changing[index] |= kept
    has_own = exclude_moving and any(flows[p].own_forward is not None or flows[p].own_backward is not None
                                     for p in pairs)

    def own(p: int, which: int) -> np.ndarray:
        flow = flows[p][4 + which]
        return flows[p][which] if flow is None else flow

    return Window(
        start=first,
        frames=frames[first:last].astype(np.float32),
        safe=safe_to_sample(source_pixels(holes, changing)),
        safe_all=safe_to_sample(~holes),
        moving=moving,
        forward=[flows[p][0] for p in pairs],
        backward=[flows[p][1] for p in pairs],
        own_forward=[own(p, 0) for p in pairs] if has_own else None,
        own_backward=[own(p, 1) for p in pairs] if has_own else None,
    )


def trace(win: Window, local: int, ys: np.ndarray, xs: np.ndarray, direction: int,
          max_steps: int, candidates: int = 1, gap: int = 1,
          in_moving_layer: np.ndarray | None = None, follow_own: np.ndarray | bool = True,
          first: np.ndarray | None = None,
          should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Follow hole pixels of window frame ``local`` along the flow until they reach known pixels.

    The first ``candidates`` sources on the path are kept, at least ``gap`` frames apart (a
    pixel goes on being traced after its first source, so that a thing passing over that spot
    for a few frames can be outvoted by the background seen before or after it). Pixels of the
    background take no moving pixel as a source; those ``in_moving_layer [K]`` (bool) may, and
    those of them also in ``follow_own`` (bool, or ``[K]`` bool) follow the moving layer's own
    motion (see :class:`Window`). ``first [K, 3]`` float32, when given, receives each pixel's
    nearest source: window frame, y, x (left as it was where there is none). ``should_cancel`` is
    polled before every step (a step over a large hole in a large frame takes a while).

    Returns:
        colours ``[K, C, 3]`` float32 and temporal distances ``[K, C]`` (``inf`` where none),
        ``C = candidates``, nearest first.
    """
    n, h, w = win.frames.shape[:3]
    k = ys.size
    colour = np.zeros((k, candidates, 3), np.float32)
    distance = np.full((k, candidates), np.inf, np.float32)
    count = np.zeros(k, np.int64)
    last = np.full(k, -gap, np.int64)
    active = np.arange(k)
    layer = np.zeros(k, bool) if in_moving_layer is None else in_moving_layer
    follow = np.broadcast_to(np.asarray(follow_own, bool), (k,))
    py, px = ys.astype(np.float32), xs.astype(np.float32)
    step_flow, check_flow = win.flows(direction, own=False)
    own_step, own_check = win.flows(direction, own=True)
    for step in range(1, max_steps + 1):
        src = local + (step - 1) * direction
        dst = src + direction
        if dst < 0 or dst >= n or active.size == 0:
            break
        check_cancel(should_cancel)
        pair = src if direction > 0 else dst  # flow index of the pair (src, dst)
        # Pixels of the moving layer follow its own motion, the others the background's.
        mine = (layer & follow)[active] if own_step is not step_flow else np.zeros(active.size, bool)
        motion = _sample_either(step_flow[pair], own_step[pair], mine, py, px)
        ny, nx = py + motion[:, 1], px + motion[:, 0]
        back = _sample_either(check_flow[pair], own_check[pair], mine, ny, nx)
        inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
        cy = np.clip(ny, 0, h - 1).astype(np.int64)  # floor for in-frame points
        cx = np.clip(nx, 0, w - 1).astype(np.int64)
        alive = inside & _step_holds(win, src, dst, motion, back, mine, py, px)
        known = np.where(layer[active], win.safe_all[dst][cy, cx], win.safe[dst][cy, cx])
        found = alive & known & (step - last[active] >= gap)
        if found.any():
            who = active[found]
            if first is not None:
                nearest = count[who] == 0
                first[who[nearest]] = np.stack([np.full(nearest.sum(), dst, np.float32), ny[found][nearest],
                                                nx[found][nearest]], 1)
            colour[who, count[who]] = sample(win.frames[dst], ny[found], nx[found])
            distance[who, count[who]] = step
            count[who] += 1
            last[who] = step
        keep = alive & (count[active] < candidates)
        active, py, px = active[keep], ny[keep], nx[keep]
    return colour, distance


def _step_holds(win: Window, src: int, dst: int, motion: np.ndarray, back: np.ndarray, own: np.ndarray,
                py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """``[K]`` bool: a trace's step ``motion [K, 2]`` from ``(py, px)`` in window frame ``src`` to
    ``dst`` passes the forward-backward test against ``back [K, 2]``, the flow at its landing.

    The official test (:func:`.source_selection.consistent`), except for a step along a moving
    thing's own motion (``own [K]``) that starts in the hole of ``src`` (the step's flow is
    interpolated there) or lands in the hole of ``dst`` (the flow it is checked against is): there
    the bound is wider by :data:`OWN_CHECK_SLACK` for each of the two. "In the hole" is where a
    bilinear sample would read it (``~win.safe_all``).
    """
    holds = consistent(motion, back)
    loose = np.nonzero(own & ~holds)[0]
    if loose.size == 0:
        return holds
    h, w = win.frames.shape[1:3]
    y, x, step = py[loose], px[loose], motion[loose]

    def in_hole(frame: int, at_y: np.ndarray, at_x: np.ndarray) -> np.ndarray:
        rows, cols = np.clip(at_y, 0, h - 1).astype(np.int64), np.clip(at_x, 0, w - 1).astype(np.int64)
        return ~win.safe_all[frame][rows, cols]

    interpolated = in_hole(src, y, x).astype(np.int8) + in_hole(dst, y + step[:, 1], x + step[:, 0])
    holds[loose] = consistent(step, back[loose], 1.0 + OWN_CHECK_SLACK * interpolated)
    return holds


def _sample_landings(frames: np.ndarray, landing: np.ndarray) -> np.ndarray:
    """Colours ``[K, 3]`` of ``frames [n, H, W, 3]`` at ``landing [K, 3]`` (window frame, y, x)."""
    out = np.zeros((landing.shape[0], 3), np.float32)
    which = landing[:, 0].astype(np.int64)
    for frame in np.unique(which):
        at = which == frame
        out[at] = sample(frames[frame], landing[at, 1], landing[at, 2])
    return out


def _sample_either(flow: np.ndarray, own: np.ndarray, mine: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Samples ``[K, 2]`` of ``flow`` at ``(y, x)``, of ``own`` where ``mine [K]`` is set."""
    out = sample(flow, y, x)
    if mine.any():
        out[mine] = sample(own, y[mine], x[mine])
    return out


def crossing_speed(win: Window, local: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``[K]`` float32: how fast (px per frame) the moving layer's own motion carries the hole pixels
    ``(ys, xs)`` of window frame ``local`` across the hole.

    The hole's motion is the shift of the pixel's part of the hole to the neighbouring frames (see
    :func:`_hole_shifts`); the speed is how far the pixel's own motion (:meth:`Window.flows`)
    differs from it, the larger of the two directions (0 where no neighbour has a hole). A hole
    that drifts over a walking animal is crossed by it; the hole of its shadow's place, or one cut
    in the shape of a thing beside it, travels with it, and a part of that thing never shows
    through it.
    """
    n = win.frames.shape[0]
    speed = np.zeros(ys.size, np.float32)
    if ys.size == 0:
        return speed
    for direction in (+1, -1):
        other = local + direction
        shift = _hole_shifts(win, local, other, ys, xs) if 0 <= other < n else None
        if shift is None:
            continue
        motion = win.flows(direction, own=True)[0][min(local, other)][ys, xs]
        speed = np.maximum(speed, np.sqrt(squared_length(motion - shift)))
    return speed


def crosses_hole(win: Window, local: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``[K]`` bool: the moving layer crosses the hole at ``(ys, xs)`` faster than :data:`CROSSING_PX`
    (see :func:`crossing_speed`)."""
    return crossing_speed(win, local, ys, xs) > CROSSING_PX


# Parts of a hole closer than this many px are one part (the pieces of one thing's mask); a part's
# shift to a neighbouring frame is read from that frame's hole within this many px of the part's box.
_PART_GAP = 15
_PART_JOIN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _PART_GAP + 1, 2 * _PART_GAP + 1))
_PART_REACH = 32


def _hole_shifts(win: Window, local: int, other: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray | None:
    """``[K, 2]`` (x, y): how far the part of window frame ``local``'s hole that holds each pixel
    ``(ys, xs)`` moves to frame ``other``; None where either frame has no hole.

    Each part (hole pixels joined across gaps under :data:`_PART_GAP` px) moves by the shift of its centre to the
    centre of ``other``'s hole pixels within :data:`_PART_REACH` px of the part's box: two things
    masked apart in one frame (two people walking away from each other) each keep their own
    motion. A part with no hole near it in ``other`` (it ends there) does not move.
    """
    hole, there = ~win.safe_all[local], ~win.safe_all[other]
    shifts = np.zeros((ys.size, 2), np.float32)
    if not hole.any() or not there.any():
        return None
    h, w = hole.shape
    # The parts, labelled over the hole's box grown by the join (not over the whole frame).
    hy, hx = np.nonzero(hole)
    b0, b1 = max(0, hy.min() - _PART_GAP - 1), min(h, hy.max() + _PART_GAP + 2)
    c0, c1 = max(0, hx.min() - _PART_GAP - 1), min(w, hx.max() + _PART_GAP + 2)
    labels = np.zeros((h, w), np.int32)
    _, labels[b0:b1, c0:c1] = cv2.connectedComponents(cv2.dilate(hole[b0:b1, c0:c1].astype(np.uint8), _PART_JOIN))
    part_of = labels[ys, xs]
    for part in np.unique(part_of):
        py, px = np.nonzero((labels == part) & hole)
        y0, y1 = max(0, py.min() - _PART_REACH), min(h, py.max() + 1 + _PART_REACH)
        x0, x1 = max(0, px.min() - _PART_REACH), min(w, px.max() + 1 + _PART_REACH)
        ny, nx = np.nonzero(there[y0:y1, x0:x1])
        if ny.size:
            shifts[part_of == part] = (nx.mean() + x0 - px.mean(), ny.mean() + y0 - py.mean())
    return shifts


def moving_layer_pixels(win: Window, local: int, ys: np.ndarray, xs: np.ndarray, max_steps: int,
                        crossing: np.ndarray | None = None,
                        should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """``[K]`` int8: whether the hole pixels ``(ys, xs)`` of window frame ``local`` hide the moving layer.

    1: they do, -1: they hide the background, 0: no evidence either way.

    A hole may lie partly over a thing that moves on its own (a swan's neck, a camel's back) and
    partly over the background. Each hole pixel is traced along that thing's own motion (the
    moving layer's flow continued into the hole) to the first frame before and after where it
    is known: if the thing moves rigidly enough, a pixel of it lands on it again, a pixel of the
    background beside it lands on the background (the thing keeps its shape while it moves).
    A pixel is taken as the moving layer's where more of those landings are on the moving layer
    (the core of it, without the margin grown for shadow and blur) than on the still background,
    as the background's where fewer. ``crossing [K]`` bool: :func:`crosses_hole`'s (None: computed
    here). ``should_cancel`` is polled before every step of the traces.
    """
    k = ys.size
    if win.own_forward is None or k == 0:
        return np.zeros(k, np.int8)
    core = win.moving_core()
    votes = np.zeros(k, np.int64)
    everywhere = np.ones(k, bool)
    unsure = np.zeros(k, bool)
    for direction in (+1, -1):
        landed_y, landed_x, landed_at, unfinished = _first_landing(win, local, ys, xs, direction, max_steps,
                                                                   everywhere, should_cancel)
        found = landed_at >= 0
        on_thing = np.zeros(k, bool)
        on_thing[found] = core[landed_at[found], landed_y[found], landed_x[found]]
        votes += np.where(found, np.where(on_thing, 1, -1), 0)
        unsure |= unfinished
    # A trace still inside the hole when the frames run out has not voted yet: near the clip's
    # ends a thing that the hole travels along with (its shadow's place) would otherwise win on
    # one vote. Those pixels need both, unless the thing crosses the hole: then the unfinished
    # trace only ran out of frames (a hole drifting over a slow camel near the clip's start), and
    # the one landing on the thing is its evidence.
    unsure &= ~(crosses_hole(win, local, ys, xs) if crossing is None else crossing)
    return np.where(np.where(unsure, votes >= 2, votes >= 1), 1, np.where(votes < 0, -1, 0)).astype(np.int8)


def _first_landing(win: Window, local: int, ys: np.ndarray, xs: np.ndarray, direction: int, max_steps: int,
                   own: np.ndarray, should_cancel: Callable[[], bool] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where pixels traced along the flows (``own [K]``: the moving layer's) first reach a known pixel.

    Returns rounded positions ``[K]`` y, x, the window frame ``[K]`` (-1: none reached) and
    ``[K]`` bool: still being traced when the window or ``max_steps`` ran out. ``should_cancel`` is
    polled before every step.
    """
    n, h, w = win.frames.shape[:3]
    k = ys.size
    out_y, out_x, out_t = np.zeros(k, np.int64), np.zeros(k, np.int64), np.full(k, -1, np.int64)
    active = np.arange(k)
    py, px = ys.astype(np.float32), xs.astype(np.float32)
    step_flow, check_flow = win.flows(direction, own=False)
    own_step, own_check = win.flows(direction, own=True)
    deep = win.deep_known()
    for step in range(1, max_steps + 1):
        src = local + (step - 1) * direction
        dst = src + direction
        if dst < 0 or dst >= n or active.size == 0:
            break
        check_cancel(should_cancel)
        pair = src if direction > 0 else dst
        mine = own[active]
        motion = _sample_either(step_flow[pair], own_step[pair], mine, py, px)
        ny, nx = py + motion[:, 1], px + motion[:, 0]
        back = _sample_either(check_flow[pair], own_check[pair], mine, ny, nx)
        inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
        alive = inside & _step_holds(win, src, dst, motion, back, mine, py, px)
        cy = np.clip(np.rint(ny), 0, h - 1).astype(np.int64)
        cx = np.clip(np.rint(nx), 0, w - 1).astype(np.int64)
        found = alive & deep[dst][cy, cx]
        who = active[found]
        out_y[who], out_x[who], out_t[who] = cy[found], cx[found], dst
        keep = alive & ~found
        active, py, px = active[keep], ny[keep], nx[keep]
    unfinished = np.zeros(k, bool)
    unfinished[active] = True
    return out_y, out_x, out_t, unfinished


def choose_sources(colours: np.ndarray, distances: np.ndarray, agree: float,
                   should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust combination of candidate sources: the medoid, then the mean of those that agree with it.

    The background behind a hole is what most frames show there; a thing that moves over that
    spot (a passing car, its shadow, a limb) shows in a few of them. The medoid (the candidate
    nearest to all others, L1 over the channels, each other candidate counting by its nearness in
    time, :data:`VOTE_POWER`) is the background's vote; the candidates within ``agree`` levels (max
    over channels) of it are averaged, weighted by inverse squared temporal distance. With two
    disagreeing candidates the nearer one wins.

    Each pixel is decided alone, so the pixels are taken :data:`CHOOSE_CHUNK` at a time, with
    ``should_cancel`` polled between chunks (over a fifth of a 1080p frame, the pairwise
    distances of all pixels at once took 1.5 s and 180 MB).

    Args:
        colours: ``[K, C, 3]`` float32. distances: ``[K, C]`` (``inf`` = no candidate).
    Returns:
        values ``[K, 3]``, reached ``[K]`` bool, and ``[K]`` int64 the index of the candidate that
        weighs most in each value (which source region a pixel belongs to).
    """
    k = colours.shape[0]
    values = np.empty((k, 3), np.float32)
    main = np.empty(k, np.int64)
    for start in range(0, k, CHOOSE_CHUNK):
        check_cancel(should_cancel)
        part = slice(start, start + CHOOSE_CHUNK)
        values[part], main[part] = _vote(colours[part], distances[part], agree)
    return values, np.isfinite(distances).any(1), main


# choose_sources decides this many pixels at a time (their pairwise distances: 432 bytes each).
CHOOSE_CHUNK = 32768


def _vote(colours: np.ndarray, distances: np.ndarray, agree: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`choose_sources` for ``colours [K, C, 3]``, ``distances [K, C]``: values ``[K, 3]``, main ``[K]``."""
    valid = np.isfinite(distances)  # [K, C]
    apart = np.where(valid, distances, 1.0)
    weight = np.where(valid, 1.0 / apart ** DISTANCE_POWER, 0.0).astype(np.float32)
    vote = np.where(valid, 1.0 / apart ** VOTE_POWER, 0.0).astype(np.float32)
    # Pairwise L1 distances between candidates: [K, C, C], each column counting by its vote.
    pair = channel_sum(np.abs(colours[:, :, None, :] - colours[:, None, :, :]))
    score = (pair * vote[:, None, :]).sum(-1)  # [K, C]
    # Ties (e.g. two candidates) go to the nearer one in time.
    score = np.where(valid, score - 1e-3 * weight, np.inf)
    medoid = colours[np.arange(colours.shape[0]), score.argmin(1)]  # [K, 3]
    close = valid & (np.abs(colours - medoid[:, None, :]).max(-1) <= agree)
    w = weight * close
    values = (colours * w[..., None]).sum(1) / np.maximum(w.sum(1), 1e-12)[:, None]
    return values.astype(np.float32), w.argmax(1)


def propagate(win: Window, local: int, hole: np.ndarray, max_steps: int, layer: np.ndarray | None = None,
              follow: np.ndarray | None = None,
              should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bidirectional propagation into ``hole [H, W]`` of window frame ``local``.

    ``layer [H, W]`` bool: the hole pixels that belong to the moving layer (they may take its
    pixels as sources); None: :func:`hole_layer`'s. ``follow [H, W]`` bool: those of them that
    follow its own motion (see :func:`moving_layer_pixels`); None: all of ``layer``.
    ``should_cancel`` is polled between the traces' steps and within the pair match.

    Returns:
        values ``[K, 3]``, a bool ``[K]`` saying which of the ``K`` hole pixels (in ``np.nonzero``
        order) were reached, and ``[K]`` int16 the frame offset of their main source (the
        candidate that weighs most; negative: earlier frames; 0: none).
    """
    ys, xs = np.nonzero(hole)
    layer = (hole_layer(win.moving[local], hole) if layer is None else layer)[ys, xs]
    follow = layer if follow is None else follow[ys, xs]
    first_f, first_b = np.full((ys.size, 3), -1, np.float32), np.full((ys.size, 3), -1, np.float32)
    col_f, dist_f = trace(win, local, ys, xs, +1, max_steps, CANDIDATES, CANDIDATE_GAP, layer, follow, first_f,
                          should_cancel)
    col_b, dist_b = trace(win, local, ys, xs, -1, max_steps, CANDIDATES, CANDIDATE_GAP, layer, follow, first_b,
                          should_cancel)
    # A moving thing's own motion may lead nowhere (it leaves the frame, its flow is inconsistent
    # where it deforms): those of its pixels are traced along the background's motion instead.
    lost = layer & follow & ~np.isfinite(np.concatenate([dist_f, dist_b], 1)).any(1)
    if lost.any() and win.own_forward is not None:
        again = np.ones(int(lost.sum()), bool)
        for direction, colours, distances, firsts in ((+1, col_f, dist_f, first_f), (-1, col_b, dist_b, first_b)):
            nearest = firsts[lost]
            colours[lost], distances[lost] = trace(win, local, ys[lost], xs[lost], direction, max_steps,
                                                   CANDIDATES, CANDIDATE_GAP, again, follow_own=False,
                                                   first=nearest, should_cancel=should_cancel)
            firsts[lost] = nearest
    # The nearest sources before and after, moved to where they show the same thing (pair_match).
    moved_f, moved_b, moved = win.pair_matcher().match(first_f, first_b, dist_f[:, 0], dist_b[:, 0], ys, xs,
                                                       should_cancel)
    if moved.any():
        col_f[moved, 0] = _sample_landings(win.frames, moved_f[moved])
        col_b[moved, 0] = _sample_landings(win.frames, moved_b[moved])
    values, reached, main = choose_sources(np.concatenate([col_f, col_b], 1),
                                           np.concatenate([dist_f, dist_b], 1), AGREE, should_cancel)
    distance = np.concatenate([dist_f, -dist_b], 1)[np.arange(ys.size), main]
    return values, reached, np.where(reached, distance, 0).astype(np.int16)
