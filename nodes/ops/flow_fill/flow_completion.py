"""Flow and flow completion: DIS flow between neighbours, the hole's flow replaced by the camera's.

Inside the (dilated) hole the measured flow follows the object, not the background; it is
replaced by the camera's motion around the hole (a homography fitted with RANSAC) plus a smooth
membrane of the residual flow (push-pull pyramid, then Jacobi relaxation), instead of
ProPainter's flow-completion network. Arrays are numpy: flows ``[H, W, 2]`` float32 (x, y px).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import cv2
import numpy as np

from .numeric import grown_box, local_affine, membrane, push_pull, squared_length
from .settings import DisPreset, FlowFillSettings, check_cancel, dilate_holes

# The object is smoothed away before DIS over its mask grown by this many pixels (JPEG halo).
GREY_FILL_DILATION = 2
# Camera-motion fit: about this many flow samples, RANSAC inlier distance, and what counts as
# "moving with the camera" (residual below 2 px + 15 % of the flow: parallax, lens distortion).
_FIT_POINTS = 3000
_RANSAC_PX = 1.0
OUTLIER_PX = 2.0
OUTLIER_FRACTION = 0.15
_MIN_TRUSTED = 0.2
# Flow completion works in the hole's bounding box grown by half its size (at least this many px).
_COMPLETION_MARGIN = 24
# Motion layers: outliers of the camera's motion are opened with this (specks of noisy flow go)
# and grown by this (the object's shadow and motion blur follow it).
_LAYER_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
LAYER_GROW = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def dis_flow(source_gray: np.ndarray, target_gray: np.ndarray, preset: DisPreset = "medium",
             draw: int = 0) -> np.ndarray:
    """Dense flow ``[H, W, 2]`` (x, y pixels) from ``source`` to ``target`` (uint8 ``[H, W]``).

    ``draw`` 1 (the second of the fills that ``FlowFillSettings.second_draw`` averages) measures the
    same motion on another grid: on the frames mirrored left-right (the flow mirrored back), with
    DIS's pyramid going one level below the preset's finest (the medium preset stops at half
    resolution; one finer is full resolution), never below full resolution.
    """
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    if not draw:
        return dis.calc(source_gray, target_gray, None)
    dis.setFinestScale(max(0, dis.getFinestScale() - 1))
    flow = dis.calc(np.ascontiguousarray(source_gray[:, ::-1]), np.ascontiguousarray(target_gray[:, ::-1]), None)
    flow = np.ascontiguousarray(flow[:, ::-1])
    flow[..., 0] *= -1.0
    return flow


def complete_flow(flow: np.ndarray, hole: np.ndarray, relax_iterations: int = 40) -> np.ndarray:
    """Replace ``flow`` inside ``hole`` by the camera's motion plus a smooth local correction.

    The camera's motion is a homography fitted robustly (RANSAC) to the flow around the hole
    (its bounding box grown by its size on each side, not the whole frame: with parallax a
    frame-wide fit follows whichever plane is largest, the distant trees, say, and misses the
    road under the hole); other moving things (a car, a player) are outliers of that fit. The
    residual flow of the pixels that follow the camera (parallax, lens) is interpolated into the
    hole by a push-pull pyramid and Jacobi steps of the Laplace equation, with the outliers
    treated like the hole, so another object's motion next to the hole does not leak into it.
    Known pixels are returned unchanged.

    Args:
        flow: ``[H, W, 2]`` float32. hole: ``[H, W]`` bool.
    Returns:
        ``[H, W, 2]`` float32.
    """
    return complete_flow_and_layers(flow, hole, relax_iterations=relax_iterations)[0]


class FlowAndLayers(NamedTuple):
    """:func:`complete_flow_and_layers`'s result.

    ``flow`` ``[H, W, 2]`` float32: the completed flow. ``outliers`` ``[H, W]`` bool: the pixels
    whose measured flow the camera's motion does not explain (see :func:`moving_layer`), the
    hole's box part of which had its flow replaced by the background's. ``moving`` ``[H, W]``
    bool: those of them where the frames show that something moves (see :func:`frames_change`),
    the pixels that are not the background and so no source for it.
    """

    flow: np.ndarray
    moving: np.ndarray
    outliers: np.ndarray
    unsure: np.ndarray | None = None
    changes: np.ndarray | None = None


def complete_flow_and_layers(flow: np.ndarray, hole: np.ndarray, unmeasured: np.ndarray | None = None,
                             relax_iterations: int = 40,
                             greys: tuple[np.ndarray, np.ndarray] | None = None,
                             smoothed: np.ndarray | None = None,
                             should_cancel: Callable[[], bool] | None = None) -> FlowAndLayers:
    """:func:`complete_flow`, and the pixels around the hole that move on their own.

    The motion layer that is not the camera's: pixels whose measured flow is an outlier of the
    camera's motion fitted around the hole (see :func:`moving_layer`), searched over the fitted
    region (the hole's box grown by its size), outside ``unmeasured`` (the object itself, whose
    flow was smoothed away and means nothing). Within the hole's box their flow is replaced like
    the hole's, by the background's motion. With ``greys`` (the two frames the flow maps
    between), a pixel of ``hole`` outside ``unmeasured`` is an outlier only where its measured
    motion explains the frames better than the camera's (see :func:`moving_layer`), and the
    layer of pixels that move on their own is the outliers where the frames change under the
    camera's motion (see :func:`frames_change`): DIS spreads a thing's motion over the still
    background beside it, and that background is a source like any other. Without ``greys``
    the layer is all the outliers.

    With ``smoothed`` (the target frame's pixels that :func:`smooth_over` replaced), an outlier of
    ``hole`` whose camera landing reads them cannot be judged from this pair: the comparison is
    with a smooth blob, not with what the target shows, so the camera's motion always looks wrong
    there (a still road beside a sliding hole looked as if it moved). Those outliers are left out
    of the layer and returned as ``unsure``, with ``changes`` (the pixels where the frames change
    under the camera's motion, judged only from the pixels that neither frame smoothed over): the
    frame's other pair decides them (:func:`unsure_layer`).

    Args:
        flow: ``[H, W, 2]`` float32. hole: ``[H, W]`` bool, the region whose flow is replaced.
        unmeasured: ``[H, W]`` bool or None, the source frame's smoothed-over pixels. greys: uint8
        ``[H, W]`` source and target frames, or None. smoothed: ``[H, W]`` bool or None.
        should_cancel: polled between the set-up's stages (each about a second over a 4K frame) and
            within the membrane (about a second over a large hole in a 1080p frame).
    """
    moving = np.zeros(hole.shape, bool)
    if not hole.any():
        return FlowAndLayers(flow, moving, moving)
    if hole.all():
        return FlowAndLayers(np.zeros_like(flow), moving, moving)
    ys, xs = np.nonzero(hole)
    reach = max(_COMPLETION_MARGIN, (ys.max() - ys.min()) // 2, (xs.max() - xs.min()) // 2)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + 1 + reach)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + 1 + reach)
    around_box = (max(0, y0 - reach), min(h, y1 + reach), max(0, x0 - reach), min(w, x1 + reach))
    around = np.zeros_like(hole)
    around[around_box[0]:around_box[1], around_box[2]:around_box[3]] = True
    matrix = fit_camera(flow, around & ~hole)
    camera = camera_flow(matrix, (y0, y1, x0, x1))  # [h', w', 2] over the box
    box_flow, box_hole = flow[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    known = ~box_hole
    residual = box_flow - camera
    trusted = known & follows_camera(box_flow, camera)
    # The camera's flow over the fitted region: for the frames' comparisons (with ``greys`` only).
    around_camera = camera_flow(matrix, around_box) if greys is not None else None
    check_cancel(should_cancel)  # each stage of this set-up takes about a second over a 4K frame
    blind = difference = None
    if trusted.sum() < _MIN_TRUSTED * known.sum():
        trusted = known  # no dominant motion: interpolate all of it
    elif matrix is not None:
        if greys is not None:
            # How far the camera's motion is from carrying one frame onto the other, made once for
            # every comparison below (the layer's test, the unsure outliers, where the frames change).
            difference = warp_difference(greys[0], greys[1], around_camera, around_box)
            if smoothed is not None:
                blind = reads_smoothed(around_camera, around_box, smoothed)
            check_cancel(should_cancel)
        moving = moving_layer(flow, matrix, around_box, unmeasured, hole if greys is not None else None, greys,
                              blind, camera=around_camera, camera_difference=difference)
    # The hole and the outliers are solved for; trusted pixels stay fixed.
    filled = membrane(residual, trusted, ~trusted, relax_iterations, should_cancel)
    out = flow.copy()
    # Things that move on their own are replaced too: a path traced through them must go on
    # with the background, not ride along with them.
    replaced = box_hole | moving[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = np.where(replaced[..., None], camera + filled, box_flow)
    unsure = changes = None
    if blind is not None:
        unsure, changes = _left_undecided(flow, hole, unmeasured, greys, around_camera, around_box, blind, difference)
    if greys is None or not moving.any():
        return FlowAndLayers(out, moving, moving, unsure, changes)
    a0, a1, b0, b1 = around_box
    changing = np.zeros_like(moving)
    changing[a0:a1, b0:b1] = frames_change(greys[0], greys[1], around_camera, around_box, difference=difference)
    return FlowAndLayers(out, moving & changing, moving, unsure, changes)


def _left_undecided(flow: np.ndarray, hole: np.ndarray, unmeasured: np.ndarray | None,
                    greys: tuple[np.ndarray, np.ndarray], camera: np.ndarray, box: tuple[int, int, int, int],
                    blind: np.ndarray, difference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`complete_flow_and_layers`'s ``unsure`` and ``changes`` (``[H, W]`` bool each) over ``box``.

    ``camera [h', w', 2]``: the camera's flow over the box; ``blind [h', w']``: where it lands on
    (near) the target's smoothed-over pixels; ``difference [h', w']``: its :func:`warp_difference`.
    """
    y0, y1, x0, x1 = box
    unsure = np.zeros(hole.shape, bool)
    unsure[y0:y1, x0:x1] = blind & hole[y0:y1, x0:x1] & ~follows_camera(flow[y0:y1, x0:x1], camera)
    unseen = blind.copy()
    if unmeasured is not None:
        unsure &= ~unmeasured
        unseen |= unmeasured[y0:y1, x0:x1]
    changes = np.zeros(hole.shape, bool)
    changes[y0:y1, x0:x1] = frames_change(greys[0], greys[1], camera, box, unseen, difference=difference)
    return unsure, changes


def complete_own_flow(flow: np.ndarray, hole: np.ndarray, moving: np.ndarray, unmeasured: np.ndarray | None = None,
                      relax_iterations: int = 40, disturbed: np.ndarray | None = None,
                      should_cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
    """The moving layer's own motion continued into ``hole``: the flow a hidden part of it follows.

    :func:`complete_flow` gives the hole the background's motion, right for what the hole hides
    of the background but not for a hidden part of a thing that moves on its own (a hole over
    a swan's neck, a walking camel's back): traced along the camera, such a pixel lands on the
    background. Here the measured flow of the ``moving`` pixels outside ``disturbed`` (its real
    motion, not replaced) is interpolated into the rest of ``hole`` by a membrane, so each hole
    pixel takes the motion of the moving thing nearest to it. Known pixels keep their measured flow.

    Args:
        flow: ``[H, W, 2]`` float32 measured flow. hole: ``[H, W]`` bool, the region whose flow
            is replaced. moving: ``[H, W]`` bool (see :func:`moving_layer`). unmeasured:
            ``[H, W]`` bool, the hole proper; moving pixels in ``hole`` but outside it are used
            when too few lie outside ``disturbed`` (a thin thing wholly inside the region).
            disturbed: ``[H, W]`` bool, the pixels whose measured flow the smoothed-over holes
            disturb (None: all of ``hole``); the layer's pixels in ``hole`` but outside it keep
            their own measured motion and pass it on.
    Returns:
        ``[H, W, 2]`` float32, or None when there is no moving layer to follow.
    """
    # The core of the layer, without the margin grown for shadow and blur (that margin is
    # background, still, and would slow the thing's motion down in the membrane).
    core = cv2.erode(moving.astype(np.uint8), LAYER_GROW).astype(bool)
    fixed = core & ~(hole if disturbed is None else disturbed)
    if fixed.sum() < _MIN_OWN_PIXELS and unmeasured is not None:
        fixed = core & ~unmeasured
    hole = hole & ~fixed
    if fixed.sum() < _MIN_OWN_PIXELS or not hole.any():
        return None
    y0, y1, x0, x1 = grown_box(hole | fixed, 1)
    box_fixed, box_hole = fixed[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    filled = membrane(flow[y0:y1, x0:x1], box_fixed, box_hole, relax_iterations, should_cancel)
    # Near the thing's pixels its motion goes on as a local plane (a turning or nearing thing moves a
    # little differently at each place); far from them, where the plane would be a guess, the membrane.
    ys, xs = np.nonzero(box_hole)
    planes, support = local_affine(flow[y0:y1, x0:x1], box_fixed, ys, xs, OWN_PLANE_SIGMA, OWN_PLANE_RIDGE,
                                   should_cancel)
    trust = (support / (support + OWN_PLANE_SUPPORT))[:, None]
    filled[ys, xs] = trust * planes + (1.0 - trust) * filled[ys, xs]
    out = flow.copy()
    out[y0:y1, x0:x1] = np.where(box_hole[..., None], filled, flow[y0:y1, x0:x1])
    return out


# The moving layer's own flow is completed only from at least this many of its pixels.
_MIN_OWN_PIXELS = 24
# Its motion in the hole is a local plane fitted to its pixels within about OWN_PLANE_SIGMA px
# (numeric.local_affine, slopes held by OWN_PLANE_RIDGE), trusted by the Gaussian mass m of those
# pixels as m / (m + OWN_PLANE_SUPPORT) against the membrane. On the bench (session 18),
# ellipse holes +0.09 dB (soapbox +0.78, blackswan +0.27; car-shadow -0.22, kite-surf -0.17),
# object-shaped +0.03; sigma 8 / 16 / 24 px: +0.03 / +0.08 / +0.03; ridge 0.1 / 0.5: +0.07 / +0.06;
# support 0.01 / 0.25: +0.07 / +0.04 (bench/RESULTS.md).
OWN_PLANE_SIGMA = 12.0
OWN_PLANE_RIDGE = 0.02
OWN_PLANE_SUPPORT = 0.05
# ... those at least this many px from both frames' holes (at most the completion region's
# dilation): DIS's patches nearer than that straddle the smoothed-over hole. Before issue 13's
# tenth session the whole completion region (16 px) was left out. 11 px: ellipse / object-shaped
# holes 20.61 / 22.18 dB against 20.46 / 22.16. Measured from the source frame's hole alone
# instead of both: 6 px put blackswan's ellipse 2.1 dB lower; 11 / 14 px gave 20.57 / 22.12 and
# 20.48 / 22.10 (bench/RESULTS.md, session 10).
OWN_FLOW_MARGIN = 11


def moving_layer(flow: np.ndarray, matrix: np.ndarray, box: tuple[int, int, int, int],
                 unmeasured: np.ndarray | None = None, disturbed: np.ndarray | None = None,
                 greys: tuple[np.ndarray, np.ndarray] | None = None, blind: np.ndarray | None = None, *,
                 camera: np.ndarray | None = None, camera_difference: np.ndarray | None = None) -> np.ndarray:
    """``[H, W]`` bool: the blobs inside ``box`` whose flow the camera's ``matrix`` does not explain.

    A segmentation into two motion layers, the camera's and the rest, rather than a test of
    single vectors: outliers of the camera's motion (beyond parallax and lens tolerance) are
    opened (specks of noisy flow in flat areas go) and then grown by a margin, as DIS spreads
    an object's motion only a few pixels past its outline but its shadow and blur follow it.
    ``unmeasured`` pixels (the hole, whose flow means nothing) are never part of it.

    Near the hole (``disturbed [H, W]`` bool, the region whose flow is replaced) DIS's patches
    follow the edge of the smoothed-over hole, which moves with the hole: a halo of still
    background around the hole has the hole's motion, not the camera's, and looked as if it
    moved on its own. Hole pixels then took that halo for a thing beside them and followed its
    motion (an ellipse over a road beside a cart, a hole beside a player that moves with him).
    There an outlier stays in the layer only where its measured motion carries the source frame
    onto the target frame (``greys``, uint8 ``[H, W]`` each) better than the camera's does, by
    :data:`EXPLAINS_LEVELS` grey levels over a :data:`EXPLAINS_WINDOW`-px window: a thing
    really moving there (a car beside its shadow's hole) is matched by its own motion, still
    background by the camera's. Where neither explains better (flat areas), the camera's wins.
    Where that comparison reads the target's smoothed-over hole (``blind [h', w']`` bool over the
    box, see :func:`reads_smoothed`), it says nothing, and those outliers are left out here.
    ``camera [h', w', 2]`` / ``camera_difference [h', w']``: the matrix's flow over the box and its
    :func:`warp_difference` between the ``greys``, when the caller has them (made here otherwise).
    """
    y0, y1, x0, x1 = box
    camera = camera_flow(matrix, box) if camera is None else camera
    outlier = ~follows_camera(flow[y0:y1, x0:x1], camera)
    if disturbed is not None and greys is not None:
        explains = own_motion_explains(greys[0], greys[1], flow, camera, box, camera_difference)
        if blind is not None:
            explains &= ~blind
        outlier &= ~disturbed[y0:y1, x0:x1] | explains
    if unmeasured is not None:
        outlier &= ~unmeasured[y0:y1, x0:x1]
    moving = np.zeros(flow.shape[:2], bool)
    moving[y0:y1, x0:x1] = layer_blobs(outlier)
    return moving


def layer_blobs(outliers: np.ndarray) -> np.ndarray:
    """``outliers`` (bool) opened (specks of noisy flow go) and grown by :data:`LAYER_GROW` (shadow, blur)."""
    blob = cv2.morphologyEx(outliers.astype(np.uint8), cv2.MORPH_OPEN, _LAYER_OPEN)
    return cv2.dilate(blob, LAYER_GROW).astype(bool)


# A landing within this many px of a smoothed-over pixel reads it: the comparison window's
# radius (EXPLAINS_WINDOW // 2) plus the bilinear sample's pixel.
BLIND_PX = 3
_BLIND = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * BLIND_PX + 1, 2 * BLIND_PX + 1))


def reads_smoothed(camera: np.ndarray, box: tuple[int, int, int, int], smoothed: np.ndarray) -> np.ndarray:
    """``[h', w']`` bool over ``box``: the camera's motion ``camera [h', w', 2]`` lands within
    :data:`BLIND_PX` px of a ``smoothed [H, W]`` pixel of the target frame (nearest pixel)."""
    y0, y1, x0, x1 = box
    h, w = smoothed.shape
    near = cv2.dilate(smoothed.astype(np.uint8), _BLIND).astype(bool)
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    lx = np.clip(np.rint(gx + camera[..., 0]), 0, w - 1).astype(np.intp)
    ly = np.clip(np.rint(gy + camera[..., 1]), 0, h - 1).astype(np.intp)
    return near[ly, lx]


def unsure_layer(unsure: list[np.ndarray], changes: list[np.ndarray]) -> np.ndarray:
    """``[H, W]`` bool: the part of one frame's moving layer that its pairs could not judge alone.

    ``unsure`` and ``changes`` hold, for each pair the frame belongs to (the one with the next
    frame, the one with the previous; one at the clip's ends), the outliers that pair left
    undecided (:func:`complete_flow_and_layers`) and where it saw the frames change. An outlier
    one pair left undecided is the layer's where every other pair left it undecided too or saw
    the frames change there: a thing moves there. Where another pair saw the frames hold still,
    it is still background beside the hole (a sliding hole reads, beside its edge, what it will
    cover next, so the pair with that frame cannot judge it, the other pair can).
    """
    kept = np.zeros(unsure[0].shape, bool)
    for index, undecided in enumerate(unsure):
        agreed = undecided.copy()
        for other in range(len(unsure)):
            if other != index:
                agreed &= unsure[other] | changes[other]
        kept |= agreed
    return layer_blobs(kept) if kept.any() else kept


# A measured motion explains two frames better than the camera's when its mean absolute grey
# difference over a window of this many px is lower by at least this many levels.
EXPLAINS_WINDOW = 5
EXPLAINS_LEVELS = 1.0


def own_motion_explains(source: np.ndarray, target: np.ndarray, flow: np.ndarray, camera: np.ndarray,
                        box: tuple[int, int, int, int], camera_difference: np.ndarray | None = None) -> np.ndarray:
    """``[h', w']`` bool over ``box = (y0, y1, x0, x1)``: ``flow`` matches the frames better than ``camera``.

    ``source`` and ``target`` are uint8 ``[H, W]`` grey frames, ``flow [H, W, 2]`` maps source to
    target, ``camera [h', w', 2]`` is the camera's flow over the box. Each warps the target back
    onto the source (bilinear); the absolute differences are averaged over
    :data:`EXPLAINS_WINDOW`-px windows and compared with a margin of :data:`EXPLAINS_LEVELS`.
    ``camera_difference``: the camera's :func:`warp_difference`, if already made.
    """
    y0, y1, x0, x1 = box
    own = warp_error(source, target, flow[y0:y1, x0:x1], box)
    if camera_difference is None:
        camera_difference = warp_difference(source, target, camera, box)
    return own + EXPLAINS_LEVELS < _window_mean(camera_difference)


def warp_error(source: np.ndarray, target: np.ndarray, motion: np.ndarray,
               box: tuple[int, int, int, int]) -> np.ndarray:
    """``[h', w']`` float32: how far ``motion [h', w', 2]`` is from carrying ``target`` onto ``source``.

    Over ``box = (y0, y1, x0, x1)`` of the uint8 ``[H, W]`` frames: the target warped back along
    the motion (bilinear), its absolute grey difference from the source averaged over
    :data:`EXPLAINS_WINDOW`-px windows.
    """
    return _window_mean(warp_difference(source, target, motion, box))


def _window_mean(difference: np.ndarray) -> np.ndarray:
    """``difference`` averaged over :data:`EXPLAINS_WINDOW`-px windows (what :func:`warp_error` reports)."""
    return cv2.blur(difference, (EXPLAINS_WINDOW, EXPLAINS_WINDOW))


def warp_difference(source: np.ndarray, target: np.ndarray, motion: np.ndarray,
                    box: tuple[int, int, int, int]) -> np.ndarray:
    """``[h', w']`` float32: :func:`warp_error` per pixel, before the window's mean."""
    y0, y1, x0, x1 = box
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    warped = cv2.remap(target.astype(np.float32), gx + motion[..., 0], gy + motion[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return np.abs(source[y0:y1, x0:x1].astype(np.float32) - warped)


# The frames change under the camera's motion where its warp error, smoothed by a Gaussian of
# this sigma (px), exceeds this many grey levels (JPEG noise and resampling stay below it). On the
# bench (issue 13, session 6) 4 to 8 levels gave the same objshift mean; above 8, weakly textured
# parts of moving things (soapbox's cart) start to count as still and are copied into the hole.
CHANGE_SIGMA = 3.0
CHANGE_LEVELS = 6.0


def frames_change(source: np.ndarray, target: np.ndarray, camera: np.ndarray,
                  box: tuple[int, int, int, int], unseen: np.ndarray | None = None, *,
                  difference: np.ndarray | None = None) -> np.ndarray:
    """``[h', w']`` bool over ``box``: the camera's motion ``camera [h', w', 2]`` does not carry ``target`` onto
    ``source`` (uint8 ``[H, W]`` frames).

    The frames themselves say whether something moves there, not DIS, whose patches and
    regularisation carry a thing's motion several px onto the still background beside it (most
    over flat ground, a wall, the sky). A still pixel is carried onto the next frame by the
    camera's motion whatever DIS says; a moving thing (its texture, its edges, its shadow's
    edge) is not. A pixel that something moves onto in the target frame changes too (the
    place a thing covers next), which keeps it out of the sources as before.

    ``unseen [h', w']`` bool: comparisons left out of the smoothing (a smoothed-over pixel read in
    either frame); where they are most of the window, nothing is said to change. ``difference
    [h', w']``: the camera's :func:`warp_difference`, if already made.
    """
    error = warp_difference(source, target, camera, box) if difference is None else difference
    if unseen is None:
        return cv2.GaussianBlur(_window_mean(error), (0, 0), CHANGE_SIGMA) > CHANGE_LEVELS
    seen = (~unseen).astype(np.float32)
    weight = cv2.GaussianBlur(seen, (0, 0), CHANGE_SIGMA)
    mean = cv2.GaussianBlur(error * seen, (0, 0), CHANGE_SIGMA) / np.maximum(weight, 1e-3)
    return (mean > CHANGE_LEVELS) & (weight > _MOSTLY_UNSEEN)


# frames_change says nothing where less than this share of the smoothing window was seen.
_MOSTLY_UNSEEN = 0.2


def fit_camera(flow: np.ndarray, known: np.ndarray) -> np.ndarray | None:
    """A homography ``[3, 3]`` fitted with RANSAC to ``flow [H, W, 2]`` at ``known [H, W]`` pixels.

    Returns None when the fit fails (too few points, degenerate motion).
    """
    stride = max(1, int(np.sqrt(known.sum() / _FIT_POINTS)))
    ys, xs = np.nonzero(known[::stride, ::stride])
    ys, xs = ys * stride, xs * stride
    if ys.size < 16:
        return None
    source = np.stack([xs, ys], 1).astype(np.float32)
    target = source + flow[ys, xs]
    matrix, _ = cv2.findHomography(source, target, cv2.RANSAC, _RANSAC_PX)
    return matrix


def camera_flow(matrix: np.ndarray | None, box: tuple[int, int, int, int]) -> np.ndarray:
    """The flow ``[y1-y0, x1-x0, 2]`` that homography ``matrix`` gives over ``box = (y0, y1, x0, x1)``.

    Zero where there is no matrix or the projection is not finite.
    """
    y0, y1, x0, x1 = box
    if matrix is None:
        return np.zeros((y1 - y0, x1 - x0, 2), np.float32)
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    grid = np.stack([gx, gy], -1)  # [h', w', 2]
    moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), matrix).reshape(grid.shape)
    camera = moved - grid
    return np.where(np.isfinite(camera), camera, 0.0).astype(np.float32)


def follows_camera(flow: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the flow is within parallax/lens tolerance of the camera's flow."""
    residual = np.sqrt(squared_length(flow - camera))
    return residual < OUTLIER_PX + OUTLIER_FRACTION * np.sqrt(squared_length(flow))


def smooth_over(grey: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``grey [H, W]`` uint8 with the hole replaced by a smooth fill from around it.

    The object's own edges would pull DIS's patches along with the object; a featureless blob
    leaves the flow near the hole to the background.
    """
    if not hole.any() or hole.all():
        return grey
    known = (~hole).astype(np.float32)
    smooth = push_pull(grey.astype(np.float32)[..., None] * known[..., None], known)[..., 0]
    return np.where(hole, np.clip(np.rint(smooth), 0, 255), grey).astype(np.uint8)


class PairFlows(NamedTuple):
    """Completed flows between frames ``i`` and ``i + 1`` and the moving layers of both frames.

    ``forward`` ``[H, W, 2]`` maps frame i to i+1, ``backward`` i+1 to i; ``moving_first`` and
    ``moving_second`` ``[H, W]`` bool are the pixels of frames i and i+1 that move on their own
    (outliers of the camera's motion, see :func:`moving_layer`); ``still_first`` and
    ``still_second`` ``[H, W]`` bool (or None: none) those of them where the frames do not change
    under the camera's motion (see :func:`frames_change`): still background DIS gave a nearby
    thing's motion, a source like any other. ``own_forward`` and ``own_backward`` are the same
    flows with the moving layer's own motion continued into the hole (:func:`complete_own_flow`), None where
    there is no moving layer: the flows a hidden part of that thing follows. ``unsure_first`` /
    ``changes_first`` (frame i, judged against i+1) and ``unsure_second`` / ``changes_second``
    (frame i+1, against i), ``[H, W]`` bool or None: the outliers this pair could not judge beside
    the hole and where it saw the frames change (:func:`complete_flow_and_layers`), for
    :func:`unsure_layer` to decide with the frame's other pair.
    """

    forward: np.ndarray
    backward: np.ndarray
    moving_first: np.ndarray
    moving_second: np.ndarray
    own_forward: np.ndarray | None = None
    own_backward: np.ndarray | None = None
    still_first: np.ndarray | None = None
    still_second: np.ndarray | None = None
    unsure_first: np.ndarray | None = None
    unsure_second: np.ndarray | None = None
    changes_first: np.ndarray | None = None
    changes_second: np.ndarray | None = None


def pair_flows(gray: Callable[[int], np.ndarray], raw: Callable[[int], np.ndarray], pair: int,
               settings: FlowFillSettings, should_cancel: Callable[[], bool] | None = None,
               draw: int = 0) -> PairFlows:
    """Completed flows and moving layers between frames ``pair`` and ``pair + 1``.

    ``gray(i)`` and ``raw(i)`` give frame ``i`` in grey and its undilated mask (bool);
    ``should_cancel`` is polled before each direction, after each DIS flow and within the completions.
    ``draw``: which of the fills averaged by :func:`.pipeline.flow_fill_inpaint` the flows are for
    (0 or 1; the second measures DIS on another grid, see :func:`dis_flow` and
    ``FlowFillSettings.second_draw``).
    """
    first_hole = dilate_holes(raw(pair), GREY_FILL_DILATION)
    second_hole = dilate_holes(raw(pair + 1), GREY_FILL_DILATION)
    first = smooth_over(gray(pair), first_hole)
    second = smooth_over(gray(pair + 1), second_hole)
    region = dilate_holes(raw(pair) | raw(pair + 1), settings.flow_mask_dilation)
    disturbed = dilate_holes(raw(pair) | raw(pair + 1), min(OWN_FLOW_MARGIN, settings.flow_mask_dilation))
    check_cancel(should_cancel)
    measured = dis_flow(first, second, settings.flow_preset, draw)
    check_cancel(should_cancel)
    forward = complete_flow_and_layers(measured, region, first_hole, greys=(first, second), smoothed=second_hole,
                                       should_cancel=should_cancel)
    own_forward = complete_own_flow(measured, region, forward.outliers, first_hole, disturbed=disturbed,
                                    should_cancel=should_cancel)
    check_cancel(should_cancel)
    measured = dis_flow(second, first, settings.flow_preset, draw)
    check_cancel(should_cancel)
    backward = complete_flow_and_layers(measured, region, second_hole, greys=(second, first), smoothed=first_hole,
                                        should_cancel=should_cancel)
    own_backward = complete_own_flow(measured, region, backward.outliers, second_hole, disturbed=disturbed,
                                     should_cancel=should_cancel)
    return PairFlows(forward.flow, backward.flow, forward.outliers, backward.outliers, own_forward, own_backward,
                     forward.outliers & ~forward.moving, backward.outliers & ~backward.moving,
                     forward.unsure, backward.unsure, forward.changes, backward.changes)
