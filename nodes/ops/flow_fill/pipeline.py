"""The driver: streams the clip through bounded windows and runs the stages on every frame.

Long clips stream through windows: each window holds ``segment_length`` output frames plus
``max_propagation`` frames of context on either side, and the flows of a frame pair are
computed once and dropped when no later window needs them. Because a pixel never looks further
than ``max_propagation`` frames away and the carried fill is handed from window to window, the
streamed result equals the whole-clip result exactly.
"""
from __future__ import annotations

import logging
from typing import Callable

import cv2
import numpy as np

from .blending import OWN_WEIGHT, blend_with_previous, match_boundary, remove_seams
from .flow_completion import pair_flows
from .propagation import CROSSING_PX, Window, crossing_speed, make_window, moving_layer_pixels, propagate
from .source_selection import carried_onto, hole_layer, nearby_layer
from .settings import FlowFillSettings, check_cancel, dilate_holes
from .spatial_fill import carry_and_fill

logger = logging.getLogger(__name__)

# The region label of the carried or spatial fill (propagated pixels: their source's frame offset).
_CARRIED_REGION = 1000
# A hole pixel takes the vote of the ring nearest to it where its thing crosses the hole by more than
# this many px per frame (see crossing_speed). Everywhere, that vote moved object-shaped holes by up to
# -2.4 dB; from 2 px on (the crossing of the evidence), by up to -0.8 dB (RESULTS.md, issue 13
# session 6).
RING_CROSSING_PX = 4.0
_NEAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))


def hole_layers(win: Window, local: int, hole: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
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
    evidence[ys, xs] = moving_layer_pixels(win, local, ys, xs, max_steps, crossing)
    ring_layer = hole_layer(win.moving[local], hole)
    # Where the thing clearly crosses the hole, the ring nearest to each pixel votes for it, not
    # only its part's ring as a whole (a hole half over a walking animal's back).
    ring_layer[ys, xs] |= nearby_layer(win.moving[local], hole)[ys, xs] & (speed > RING_CROSSING_PX)
    ring_layer[ys, xs] &= (evidence[ys, xs] != 0) | crossing
    layer = ring_layer | (evidence > 0)
    follow = (evidence > 0) | (ring_layer & (evidence == 0))
    return layer, follow


def fill_frame(win: Window, local: int, hole: np.ndarray, previous: np.ndarray | None,
               settings: FlowFillSettings, should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """One output frame ``[H, W, 3]`` uint8.

    Propagation, then the carried/spatial fill for the pixels it did not reach, then the blend
    with the previous output along the flow, then the boundary match, then the gradient-domain
    blend between the source regions.
    """
    frame = win.frames[local].copy()  # [H, W, 3] float32
    ys, xs = np.nonzero(hole)
    if ys.size:
        layer, follow = hole_layers(win, local, hole, settings.max_propagation)
        values, reached, offset = propagate(win, local, hole, settings.max_propagation, layer, follow)
        check_cancel(should_cancel)
        frame[ys[reached], xs[reached]] = values[reached]
        regions = np.zeros(hole.shape, np.int16)
        regions[ys, xs] = np.where(reached, offset, _CARRIED_REGION)
        rest = ~reached
        to_previous = None
        ghost = np.zeros(ys.size, bool)
        if local > 0:  # hidden parts of the moving layer are carried along its own motion
            to_previous = win.flows(-1, own=False)[0][local - 1]
            if follow.any() and win.own_backward is not None:
                to_previous = np.where(follow[..., None], win.own_backward[local - 1], to_previous)
            # A background pixel carries nothing from a thing moving on its own in the previous
            # frame (no source for propagation either): the carried fill would creep that thing's
            # colour into the hole a little further each frame, as a car's into the place of its
            # shadow. Those pixels get the spatial fill and no temporal blend.
            ghost = ~follow[ys, xs] & carried_onto(win.moving_things(local - 1), to_previous, ys, xs)
        # Moving pixels beside the background part of the hole are not drawn from; beside a part
        # of the hole that belongs to the moving thing itself, they are its surroundings.
        own = cv2.dilate(layer.astype(np.uint8), _NEAR).astype(bool)
        moving = win.moving[local] & ~hole & ~own
        carry_and_fill(frame, ys[rest], xs[rest], previous if local > 0 else None,
                       to_previous, settings.spatial_radius, avoid=moving, should_cancel=should_cancel,
                       not_carried=ghost[rest])
        if local > 0 and previous is not None:
            blend_with_previous(frame, ys[~ghost], xs[~ghost], previous, to_previous, OWN_WEIGHT)
        match_boundary(frame, hole, ignore=moving)
        check_cancel(should_cancel)
        remove_seams(frame, hole, regions, ignore=moving)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


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
    # Per-frame caches of the window in hand (grey frames, dilated holes): nothing the size of
    # the clip is made besides the output.
    grey_cache: dict[int, np.ndarray] = {}
    hole_cache: dict[int, np.ndarray] = {}

    def raw(i: int) -> np.ndarray:
        return np.asarray(masks[i]) != 0

    def gray(i: int) -> np.ndarray:
        if i not in grey_cache:
            grey_cache[i] = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        return grey_cache[i]

    def hole(i: int) -> np.ndarray:
        if i not in hole_cache:
            hole_cache[i] = dilate_holes(raw(i), settings.mask_dilation)
        return hole_cache[i]

    if not any(raw(i).any() for i in range(total)):
        return out
    if all(hole(i).all() for i in range(total)):  # stops at the first frame with a known pixel
        logger.warning("the mask covers every pixel of every frame: nothing to propagate, filling flat grey")
        out[:] = 128
        return out

    flows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    previous: np.ndarray | None = None
    reach, seg = settings.max_propagation, settings.segment_length
    for start in range(0, total, seg):
        end = min(total, start + seg)
        first, last = max(0, start - reach), min(total, end + reach)
        for stale in [p for p in flows if p < first]:
            del flows[stale]
        for cache in (grey_cache, hole_cache):
            for stale in [i for i in cache if i < first]:
                del cache[stale]
        for pair in range(first, last - 1):
            if pair not in flows:
                check_cancel(should_cancel)
                flows[pair] = pair_flows(gray, raw, pair, settings, should_cancel)
        win = None  # drop the previous window before building the next (one window in memory)
        win = make_window(frames, np.stack([hole(i) for i in range(first, last)]), flows, first)
        for index in range(start, end):
            check_cancel(should_cancel)
            if hole(index).any():
                out[index] = fill_frame(win, index - first, hole(index), previous, settings, should_cancel)
            previous = out[index].astype(np.float32)
            if progress is not None:
                progress(index + 1, total)
    return out
