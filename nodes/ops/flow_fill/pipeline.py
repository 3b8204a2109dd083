"""The driver: streams the clip through bounded windows and runs the stages on every frame.

Long clips stream through windows: each window holds ``segment_length`` output frames plus
``max_propagation`` frames of context on either side, and the flows of a frame pair are
computed once and dropped when no later window needs them. A pixel never looks further than
``max_propagation`` frames away, so each frame's propagation is the same streamed or not.

What propagation does not settle runs as a recursion along the motion: the carried fill of what
no frame shows, and the temporal blend. Run one way only, a frame's fill would depend on which
way the clip runs (the first frames never steadied, a never-seen spot's fill the first frame's
guess carried on). Each frame is the mean of a forward recursion, handed from window to window,
and a backward one that starts at the window's last frame, context included
(``FlowFillSettings.two_sided``; forward only, the streamed result equals the whole-clip result
exactly; two-sided, the last window's frames do, and earlier windows differ only by where their
backward recursion started).

The whole of that runs twice (``FlowFillSettings.second_draw``), the second time from flows measured
on another grid (:func:`.flow_completion.dis_flow`'s second draw), and each hole pixel is the mean of
the two fills: the moving layers, the traces' landings and the votes come out a little differently
from each set of flows, and their errors are largely independent. The draws run one after the
other, so the memory of a run is that of one.
"""
from __future__ import annotations

import logging
from typing import Callable, NamedTuple

import cv2
import numpy as np

from .blending import OWN_WEIGHT, blend_with_previous, match_boundary, remove_seams
from .flow_completion import PairFlows, pair_flows
from .propagation import CROSSING_PX, Window, crossing_speed, make_window, moving_layer_pixels, propagate
from .source_selection import carried_onto, hole_layer, nearby_layer
from .settings import FlowFillSettings, check_cancel, dilate_holes
from .spatial_fill import CarryHistory, carry_and_fill, coarse_of_with_grain_of

logger = logging.getLogger(__name__)

# The region label of the carried or spatial fill (propagated pixels: their source's frame offset).
_CARRIED_REGION = 1000
# A hole pixel takes the vote of the ring nearest to it where its thing crosses the hole by more than
# this many px per frame (see crossing_speed). Everywhere, that vote moved object-shaped holes by up to
# -2.4 dB; from 2 px on (the crossing of the evidence), by up to -0.8 dB (RESULTS.md, issue 13
# session 6).
RING_CROSSING_PX = 4.0
_NEAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))


def hole_layers(win: Window, local: int, hole: np.ndarray, max_steps: int,
                should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which pixels of ``hole [H, W]`` (window frame ``local``) hide the moving layer: ``layer, follow``.

    ``layer [H, W]`` bool: they may take the layer's pixels as sources; ``follow``: those of them
    that follow its own motion. Each pixel's own evidence decides (where its traces along the
    layer's motion land, :func:`.propagation.moving_layer_pixels`), else the majority of the ring
    around its part of the hole (:func:`.source_selection.hole_layer`), or where the thing's own
    motion crosses the hole by more than :data:`RING_CROSSING_PX` px per frame, the ring nearest
    to the pixel (:func:`.source_selection.nearby_layer`). Pixels shown to be background but in
    the layer's ring do not follow its motion (the shadow's place beside it: its flow is the
    background's). Where the hole travels along with the thing (the shape of a
    thing beside it, its shadow's place: see :func:`.propagation.crossing_speed`), the ring says
    nothing about what the hole hides and the traces along the thing's motion never leave the
    hole: without evidence of their own those pixels are background (following the thing, they
    took it as their source: a ghost of it in the hole).
    """
    ys, xs = np.nonzero(hole)
    evidence = np.zeros(hole.shape, np.int8)
    speed = crossing_speed(win, local, ys, xs)
    crossing = speed > CROSSING_PX
    evidence[ys, xs] = moving_layer_pixels(win, local, ys, xs, max_steps, crossing, should_cancel)
    ring_layer = hole_layer(win.moving[local], hole)
    # Where the thing clearly crosses the hole, the ring nearest to each pixel votes for it, not
    # only its part's ring as a whole (a hole half over a walking animal's back).
    ring_layer[ys, xs] |= nearby_layer(win.moving[local], hole)[ys, xs] & (speed > RING_CROSSING_PX)
    ring_layer[ys, xs] &= (evidence[ys, xs] != 0) | crossing
    layer = ring_layer | (evidence > 0)
    follow = (evidence > 0) | (ring_layer & (evidence == 0))
    return layer, follow


class FramePropagation(NamedTuple):
    """What propagation found for the hole of one frame; both recursions of :func:`flow_fill_inpaint` share it.

    ``ys``, ``xs`` ``[K]``: the hole's pixels (``np.nonzero`` order); ``layer``, ``follow`` ``[H, W]``
    bool: :func:`hole_layers`'; ``values [K, 3]``, ``reached [K]``, ``offset [K]``:
    :func:`.propagation.propagate`'s.
    """

    ys: np.ndarray
    xs: np.ndarray
    layer: np.ndarray
    follow: np.ndarray
    values: np.ndarray
    reached: np.ndarray
    offset: np.ndarray


def propagate_frame(win: Window, local: int, hole: np.ndarray, settings: FlowFillSettings,
                    should_cancel: Callable[[], bool] | None = None) -> FramePropagation:
    """The hole of window frame ``local``: which pixels hide the moving layer, then propagation.

    ``should_cancel`` is polled between the traces' steps (over a large hole in a large frame a
    frame's propagation takes seconds)."""
    ys, xs = np.nonzero(hole)
    layer, follow = hole_layers(win, local, hole, settings.max_propagation, should_cancel)
    values, reached, offset = propagate(win, local, hole, settings.max_propagation, layer, follow, should_cancel)
    return FramePropagation(ys, xs, layer, follow, values, reached, offset)


def finish_frame(win: Window, local: int, hole: np.ndarray, found: FramePropagation, history: CarryHistory,
                 direction: int, settings: FlowFillSettings,
                 should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """One output frame ``[H, W, 3]`` float32 of the recursion running in ``direction`` (+1: forward in time).

    The propagated pixels, then the carried or spatial fill for the pixels propagation did not
    reach, then the blend with the previous output frame along the flow, then the boundary match,
    then the gradient-domain blend between the source regions. ``history`` holds the recursion's
    output frames so far, the newest being the frame before this one in its direction (window frame
    ``local - direction``; none: the recursion starts here); the new frame is added to it.
    """
    frame = win.frames[local].copy()  # [H, W, 3] float32
    ys, xs, layer, follow, values, reached, offset = found
    previous = history.last
    frame[ys[reached], xs[reached]] = values[reached]
    regions = np.zeros(hole.shape, np.int16)
    regions[ys, xs] = np.where(reached, offset, _CARRIED_REGION)
    rest = ~reached
    other = local - direction
    if not 0 <= other < win.frames.shape[0]:
        previous = None
    to_previous = None
    ghost = np.zeros(ys.size, bool)
    if previous is not None:  # hidden parts of the moving layer are carried along its own motion
        pair = min(local, other)
        to_previous = win.flows(-direction, own=False)[0][pair]
        own = win.flows(-direction, own=True)[0][pair] if win.own_forward is not None else None
        if follow.any() and own is not None:
            to_previous = np.where(follow[..., None], own, to_previous)
        # A background pixel carries nothing from a thing moving on its own in the previous
        # frame (no source for propagation either): the carried fill would creep that thing's
        # colour into the hole a little further each frame, as a car's into the place of its
        # shadow. Those pixels get the spatial fill and no temporal blend.
        ghost = ~follow[ys, xs] & carried_onto(win.moving_things(other), to_previous, ys, xs)
    # Moving pixels beside the background part of the hole are not drawn from; beside a part
    # of the hole that belongs to the moving thing itself, they are its surroundings.
    own_part = cv2.dilate(layer.astype(np.uint8), _NEAR).astype(bool)
    moving = win.moving[local] & ~hole & ~own_part
    carried, origins = carry_and_fill(frame, ys[rest], xs[rest], None if previous is None else history, to_previous,
                                      settings.spatial_radius, avoid=moving, should_cancel=should_cancel,
                                      not_carried=ghost[rest])
    carried_at = np.nonzero(rest)[0][carried]  # [K] indices of the carried pixels
    if previous is not None:
        # A carried pixel is the previous frame's colour already (sampled where it came from): a
        # blend with that frame resampled here would blur it again.
        blended = ~ghost
        blended[carried_at] = False
        blend_with_previous(frame, ys[blended], xs[blended], previous, to_previous, OWN_WEIGHT)
    match_boundary(frame, hole, ignore=moving)
    check_cancel(should_cancel)
    remove_seams(frame, hole, regions, ignore=moving, should_cancel=should_cancel)
    history.push(frame, ys[carried_at], xs[carried_at], origins)
    return frame


def flow_fill_inpaint(frames: np.ndarray, masks: np.ndarray, settings: FlowFillSettings | None = None, *,
                      progress: Callable[[int, int], None] | None = None,
                      should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Fill the masked object in every frame, streaming the clip through bounded windows.

    Args:
        frames: uint8 ``[T, H, W, 3]`` RGB.
        masks: ``[T, H, W]``, nonzero = object to remove (dilated here by
            ``settings.mask_dilation``, like the official pipeline).
        settings: see :class:`FlowFillSettings`.
        progress: called as ``progress(frames_done, T)``.
        should_cancel: polled between frames; True raises :class:`InpaintCancelled`.
    Returns:
        uint8 ``[T, H, W, 3]``; pixels outside the dilated mask equal ``frames`` exactly.
    """
    settings = settings or FlowFillSettings()
    if settings.max_propagation < 1 or settings.segment_length < 1:
        raise ValueError("max_propagation and segment_length must be at least 1")
    out = frames.copy()
    total = frames.shape[0]
    clip = _ClipFrames(frames, masks, settings.mask_dilation)
    if not any(clip.raw(i).any() for i in range(total)):
        return out
    if all(clip.hole(i).all() for i in range(total)):  # stops at the first frame with a known pixel
        logger.warning("the mask covers every pixel of every frame: nothing to propagate, filling flat grey")
        out[:] = 128
        return out
    draws = 2 if settings.second_draw else 1
    for draw in range(draws):
        # Each draw is half of the run (of all of it with one draw).
        reported = None if progress is None else (
            lambda done, offset=draw * total: progress((offset + done) // draws, total))
        _fill_draw(clip, draw, out, settings, should_cancel, reported)
    return out


class _ClipFrames:
    """Frame ``i`` of the clip in grey, its mask and its dilated hole, cached for the window in hand only
    (:meth:`drop_before`): nothing the size of the clip is made besides the output."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray, dilation: int):
        self.frames, self.masks, self.dilation = frames, masks, dilation
        self._grey: dict[int, np.ndarray] = {}
        self._hole: dict[int, np.ndarray] = {}

    def raw(self, i: int) -> np.ndarray:
        return np.asarray(self.masks[i]) != 0

    def gray(self, i: int) -> np.ndarray:
        if i not in self._grey:
            self._grey[i] = cv2.cvtColor(self.frames[i], cv2.COLOR_RGB2GRAY)
        return self._grey[i]

    def hole(self, i: int) -> np.ndarray:
        if i not in self._hole:
            self._hole[i] = dilate_holes(self.raw(i), self.dilation)
        return self._hole[i]

    def drop_before(self, first: int) -> None:
        for cache in (self._grey, self._hole):
            for stale in [i for i in cache if i < first]:
                del cache[stale]


def _fill_draw(clip: _ClipFrames, draw: int, out: np.ndarray, settings: FlowFillSettings,
               should_cancel: Callable[[], bool] | None, progress: Callable[[int], None] | None) -> None:
    """One of :func:`flow_fill_inpaint`'s fills, streamed through the windows, with the flows of ``draw``
    (see ``FlowFillSettings.second_draw``). The first fill writes the hole pixels of ``out``; the
    second replaces them by the mean of the two. ``progress(done)`` receives the clip frames done."""
    frames = clip.frames
    total = frames.shape[0]
    flows: dict[int, PairFlows] = {}
    history = CarryHistory()  # the forward recursion's output frames, handed between windows
    reach, seg = settings.max_propagation, settings.segment_length
    for start in range(0, total, seg):
        end = min(total, start + seg)
        first, last = max(0, start - reach), min(total, end + reach)
        for stale in [p for p in flows if p < first]:
            del flows[stale]
        clip.drop_before(first)
        for pair in range(first, last - 1):
            if pair not in flows:
                check_cancel(should_cancel)
                flows[pair] = pair_flows(clip.gray, clip.raw, pair, settings, should_cancel, draw)
        win = None  # drop the previous window before building the next (one window in memory)
        win = make_window(frames, np.stack([clip.hole(i) for i in range(first, last)]), flows, first)
        _fill_window(win, range(start, end), clip.hole, history, out, draw > 0, settings, should_cancel, progress)


def _fill_window(win: Window, outputs: range, hole: Callable[[int], np.ndarray], history: CarryHistory,
                 out: np.ndarray, averaged: bool, settings: FlowFillSettings,
                 should_cancel: Callable[[], bool] | None, progress: Callable[[int], None] | None) -> None:
    """Fill the ``outputs`` frames of ``win`` into ``out``: the mean of a forward and a backward recursion
    (``averaged``: the mean of that and what ``out``'s hole pixels already hold, the first draw's fill).

    Each frame's propagation is made once (:func:`propagate_frame`); the recursions
    (:func:`finish_frame`: the carried fill of what no frame shows and the temporal blend) run over
    it forward, continuing ``history`` (the forward recursion's output frames before the window;
    empty at the clip's start; the window's are added to it, for the next window), and backward
    from the window's last frame, its context included. ``progress(done)`` receives the clip
    frames done.
    """
    first = win.start
    last = first + win.frames.shape[0]
    forward: dict[int, np.ndarray] = {}  # frame -> the forward recursion's values at its hole pixels
    found: dict[int, FramePropagation] = {}
    units = 0  # each output frame is done by two recursions

    def report() -> None:
        if progress is not None:
            progress(outputs.start + units // 2)

    for index in outputs:
        check_cancel(should_cancel)
        if hole(index).any():
            here = propagate_frame(win, index - first, hole(index), settings, should_cancel)
            filled = finish_frame(win, index - first, hole(index), here, history, +1, settings, should_cancel)
            if settings.two_sided:  # kept for the backward recursion
                found[index], forward[index] = here, filled[here.ys, here.xs]
            else:
                _write(out[index], here, filled[here.ys, here.xs], averaged)
        else:  # a copy: a view would keep the whole window's frames alive in the handed history
            history.push(win.frames[index - first].copy())
        units += 1 if settings.two_sided else 2
        report()
    if not settings.two_sided:
        return
    backward = CarryHistory()
    for index in range(last - 1, outputs.start - 1, -1):
        check_cancel(should_cancel)
        if not hole(index).any():
            backward.push(win.frames[index - first])
        else:
            here = found.pop(index, None) or propagate_frame(win, index - first, hole(index), settings, should_cancel)
            following = finish_frame(win, index - first, hole(index), here, backward, -1, settings, should_cancel)
            if index < outputs.stop:
                values = _two_sided(win.frames[index - first], here, forward.pop(index), following)
                _write(out[index], here, values, averaged)
        if index < outputs.stop:
            units += 1
            report()


def _write(frame: np.ndarray, found: FramePropagation, values: np.ndarray, averaged: bool) -> None:
    """The fill ``values [K, 3]`` into the hole pixels of the output ``frame [H, W, 3]`` uint8, rounded;
    ``averaged``: the mean of it and what those pixels hold (the first draw's fill)."""
    if averaged:
        values = 0.5 * (values + frame[found.ys, found.xs])
    frame[found.ys, found.xs] = np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _two_sided(known: np.ndarray, found: FramePropagation, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """``[K, 3]``: the fill of a frame's hole pixels from the two recursions.

    ``known [H, W, 3]``: the frame; ``forward [K, 3]``: the forward recursion's values at the hole
    pixels; ``backward [H, W, 3]``: the backward recursion's frame. Their mean, except that what
    propagation did not reach keeps the forward fill's grain (:func:`.spatial_fill.coarse_of_with_grain_of`).
    """
    ys, xs, unreached = found.ys, found.xs, ~found.reached
    values = 0.5 * (forward + backward[ys, xs])
    if unreached.any():
        mean, grainy = known.copy(), known.copy()
        mean[ys, xs], grainy[ys, xs] = values, forward
        values[unreached] = coarse_of_with_grain_of(mean, grainy, ys[unreached], xs[unreached])
    return values
