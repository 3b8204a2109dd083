"""Weights-free video inpainting: DIS flow, smooth flow completion, bidirectional propagation.

The same three stages as ProPainter's flow-guided propagation, with classical parts instead of
networks, so object removal works without a GPU and without model files:

1. **Flow.** OpenCV's DIS optical flow between neighbouring frames, both directions (instead of
   RAFT).
2. **Flow completion.** Inside the (dilated) hole the measured flow follows the object, not the
   background; it is replaced by the camera's motion around the hole (a homography fitted with
   RANSAC) plus a smooth membrane of the residual flow (push-pull pyramid, then Jacobi
   relaxation) instead of the flow-completion network.
3. **Propagation.** Every hole pixel is traced along the completed flow, forward and backward in
   time, until it lands on a pixel that is known in some frame (the background revealed as the
   object moves). Positions are composed along the whole path and the colour is sampled once, so
   far sources do not blur. Both directions are blended by inverse temporal distance.
4. **Never-seen pixels.** What no frame reveals is filled spatially once (OpenCV Telea, from the
   pixels around it, propagated ones included) and then *carried along the flow* into the next
   frames, so the invented content moves with the background instead of flickering. Plain
   per-frame inpainting is exactly what this avoids.
5. **Steadying and seams.** The fill is blended half and half with the previous output frame
   carried along the flow (a recursive filter along the motion), then shifted so it meets the
   pixels around the hole without a step: sources from other frames differ in light, haze and
   spray, and the jump measured around the outline is spread over the hole as a membrane, as in
   Poisson cloning.

Long clips stream through windows: each window holds ``segment_length`` output frames plus
``max_propagation`` frames of context on either side, and the flows of a frame pair are
computed once and dropped when no later window needs them. Because a pixel never looks further
than ``max_propagation`` frames away and the carried fill is handed from window to window, the
streamed result equals the whole-clip result exactly.

All arrays here are numpy on the CPU; frames are uint8 ``[T, H, W, 3]`` RGB, masks bool
``[T, H, W]`` with True = hole.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Literal

import cv2
import numpy as np
import torch

from ...propainter_core.ops.consistency import DEFAULT_ALPHA1, DEFAULT_ALPHA2
from ...propainter_core.ops.morphology import binary_dilation

logger = logging.getLogger(__name__)

# Points per row of the remap maps used for scattered bilinear sampling.
_REMAP_COLUMNS = 4096
# The object is smoothed away before DIS over its mask grown by this many pixels (JPEG halo).
_GREY_FILL_DILATION = 2
# Camera-motion fit: about this many flow samples, RANSAC inlier distance, and what counts as
# "moving with the camera" (residual below 2 px + 15 % of the flow: parallax, lens distortion).
_FIT_POINTS = 3000
_RANSAC_PX = 1.0
_OUTLIER_PX = 2.0
_OUTLIER_FRACTION = 0.15
_MIN_TRUSTED = 0.2
# Flow completion works in the hole's bounding box grown by half its size (at least this many px).
_COMPLETION_MARGIN = 24
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
# quality and flicker on the bench clips (bench/bench_flow_fill.py).
_OWN_WEIGHT = 0.5

DisPreset = Literal["ultrafast", "fast", "medium"]
_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class InpaintCancelled(Exception):
    """Raised between frames when ``should_cancel()`` returned True."""


@dataclass(frozen=True)
class FlowFillSettings:
    """Settings of the weights-free backend.

    Attributes:
        mask_dilation: iterations of 3x3-cross dilation of the hole (official default 4).
        flow_mask_dilation: dilation of the region whose flow is replaced by interpolation (the
            official pipeline uses the same value as ``mask_dilation``; DIS needs more, as its
            patches and smoothing carry the object's motion well past its outline: 16 measured
            best on the bench clips).
        max_propagation: how many frames a pixel is traced in each direction.
        segment_length: output frames per streamed window.
        spatial_radius: Telea radius for never-seen pixels.
        flow_preset: DIS preset.
    """

    mask_dilation: int = 4
    flow_mask_dilation: int = 16
    max_propagation: int = 30
    segment_length: int = 60
    spatial_radius: int = 5
    flow_preset: DisPreset = "medium"


# --------------------------------------------------------------------------- masks and flow
def dilate_holes(masks: np.ndarray, iterations: int) -> np.ndarray:
    """Dilate bool masks ``[T, H, W]`` (or ``[H, W]``) with a 3x3 cross, ``iterations`` times.

    The numpy face of ``propainter_core.ops.morphology.binary_dilation``: equals
    ``scipy.ndimage.binary_dilation(m, iterations=n)`` (the official ``read_mask``) per frame.
    """
    return binary_dilation(torch.from_numpy(np.ascontiguousarray(masks)), iterations).numpy()


def dis_flow(source_gray: np.ndarray, target_gray: np.ndarray, preset: DisPreset = "medium") -> np.ndarray:
    """Dense flow ``[H, W, 2]`` (x, y pixels) from ``source`` to ``target`` (uint8 ``[H, W]``)."""
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    return dis.calc(source_gray, target_gray, None)


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
    if not hole.any():
        return flow
    if hole.all():
        return np.zeros_like(flow)
    ys, xs = np.nonzero(hole)
    reach = max(_COMPLETION_MARGIN, (ys.max() - ys.min()) // 2, (xs.max() - xs.min()) // 2)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + 1 + reach)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + 1 + reach)
    around = np.zeros_like(hole)
    around[max(0, y0 - reach):y1 + reach, max(0, x0 - reach):x1 + reach] = True
    camera = camera_flow(fit_camera(flow, around & ~hole), (y0, y1, x0, x1))  # [h', w', 2] over the box
    box_flow, box_hole = flow[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    known = ~box_hole
    residual = box_flow - camera
    trusted = known & _follows_camera(box_flow, camera)
    if trusted.sum() < _MIN_TRUSTED * known.sum():
        trusted = known  # no dominant motion: interpolate all of it
    # The hole and the outliers are solved for; trusted pixels stay fixed.
    filled = _membrane(residual, trusted, ~trusted, relax_iterations)
    out = flow.copy()
    out[y0:y1, x0:x1] = np.where(box_hole[..., None], camera + filled, box_flow)
    return out


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


def _follows_camera(flow: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the flow is within parallax/lens tolerance of the camera's flow."""
    residual = np.sqrt(((flow - camera) ** 2).sum(-1))
    return residual < _OUTLIER_PX + _OUTLIER_FRACTION * np.sqrt((flow ** 2).sum(-1))


def _membrane(values: np.ndarray, fixed: np.ndarray, free: np.ndarray, iterations: int) -> np.ndarray:
    """Smooth interpolation of ``values [H, W, C]`` from the ``fixed`` pixels into the ``free`` ones.

    A push-pull pyramid gives the first guess, then Jacobi steps of the Laplace equation (3x3
    means) relax the ``free`` pixels with the ``fixed`` ones held; pixels that are neither keep
    their push-pull value and take part in the means. Returns ``[H, W, C]`` float32 equal to
    ``values`` on ``fixed``.
    """
    weight = fixed.astype(np.float32)
    filled = _push_pull(values * weight[..., None], weight)
    filled = np.where(fixed[..., None], values, filled).astype(np.float32)
    free_xy = np.broadcast_to(free[..., None], filled.shape)
    for _ in range(iterations):
        np.copyto(filled, cv2.blur(filled, (3, 3), borderType=cv2.BORDER_REPLICATE), where=free_xy)
    return filled


def _push_pull(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Normalised-convolution pyramid: ``weighted = value * weight`` ``[H, W, C]``, ``weight [H, W]``."""
    levels = [(weighted, weight)]
    while min(levels[-1][1].shape) > 2:
        v, w = levels[-1]
        size = ((w.shape[1] + 1) // 2, (w.shape[0] + 1) // 2)
        small = cv2.resize(v, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], v.shape[-1])
        levels.append((small, cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    v, w = levels[-1]
    total = max(float(w.sum()), 1e-12)
    estimate = np.broadcast_to(v.reshape(-1, v.shape[-1]).sum(0) / total, v.shape).copy()
    for v, w in reversed(levels):
        up = cv2.resize(estimate, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(v.shape)
        alpha = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # trust a level once a quarter is known
        own = v / np.maximum(w, 1e-12)[..., None]
        estimate = alpha * own + (1.0 - alpha) * up
    return estimate.astype(np.float32)


# --------------------------------------------------------------------------- sampling
def _sample(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image [H, W, C]`` (float32) at float positions, clamped to the frame.

    OpenCV's remap does the gather in C (positions quantised to 1/32 px, far below the flow's
    own accuracy); the points are laid out as a 2-D map because remap's maps are images.

    Returns:
        ``[K, C]`` float32.
    """
    k = y.size
    channels = image.shape[2] if image.ndim == 3 else 1
    if k == 0:
        return np.zeros((0, channels), np.float32)
    cols = min(k, _REMAP_COLUMNS)
    rows = -(-k // cols)
    map_x = np.zeros(rows * cols, np.float32)
    map_y = np.zeros(rows * cols, np.float32)
    map_x[:k], map_y[:k] = x, y
    out = cv2.remap(image, map_x.reshape(rows, cols), map_y.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, channels)[:k]


def _safe_to_sample(known: np.ndarray) -> np.ndarray:
    """``[n, H, W]`` bool: the 2x2 neighbourhood a bilinear sample at ``(y, x)`` reads is all known."""
    safe = known.copy()
    safe[:, :, :-1] &= known[:, :, 1:]
    safe[:, :-1, :] &= known[:, 1:, :]
    safe[:, :-1, :-1] &= known[:, 1:, 1:]
    return safe


@dataclass
class _Window:
    """Frames ``[a, b)`` of the clip with the completed flows between them.

    ``forward[i]`` maps frame ``a+i`` to ``a+i+1`` (defined on frame ``a+i``), ``backward[i]``
    maps ``a+i+1`` to ``a+i`` (defined on frame ``a+i+1``); both ``[n-1, H, W, 2]``.
    """

    start: int
    frames: np.ndarray   # [n, H, W, 3] float32
    safe: np.ndarray     # [n, H, W] bool, see _safe_to_sample
    forward: np.ndarray  # [n-1, H, W, 2]
    backward: np.ndarray  # [n-1, H, W, 2]


def _trace(win: _Window, local: int, ys: np.ndarray, xs: np.ndarray, direction: int,
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
        motion = _sample(step_flow[pair], py, px)
        ny, nx = py + motion[:, 1], px + motion[:, 0]
        back = _sample(check_flow[pair], ny, nx)
        mismatch = ((motion + back) ** 2).sum(1)
        bound = DEFAULT_ALPHA1 * ((motion ** 2).sum(1) + (back ** 2).sum(1)) + DEFAULT_ALPHA2
        inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
        alive = inside & (mismatch < bound)
        cy = np.clip(ny, 0, h - 1).astype(np.int64)  # floor for in-frame points
        cx = np.clip(nx, 0, w - 1).astype(np.int64)
        known = win.safe[dst][cy, cx]
        found = alive & known
        if found.any():
            colour[active[found]] = _sample(win.frames[dst], ny[found], nx[found])
            distance[active[found]] = step
        keep = alive & ~known
        active, py, px = active[keep], ny[keep], nx[keep]
    return colour, distance


def _propagate(win: _Window, local: int, hole: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Bidirectional propagation into ``hole [H, W]`` of window frame ``local``.

    Returns:
        values ``[K, 3]`` and a bool ``[K]`` saying which of the ``K`` hole pixels (in
        ``np.nonzero`` order) were reached.
    """
    ys, xs = np.nonzero(hole)
    col_f, dist_f = _trace(win, local, ys, xs, +1, max_steps)
    col_b, dist_b = _trace(win, local, ys, xs, -1, max_steps)
    w_f = np.where(np.isfinite(dist_f), 1.0 / dist_f, 0.0).astype(np.float32)[:, None]
    w_b = np.where(np.isfinite(dist_b), 1.0 / dist_b, 0.0).astype(np.float32)[:, None]
    total = w_f + w_b
    values = (col_f * w_f + col_b * w_b) / np.maximum(total, 1e-12)
    return values, total[:, 0] > 0


def _carry_and_fill(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, previous: np.ndarray | None,
                    to_previous: np.ndarray | None, radius: int) -> np.ndarray:
    """Fill never-seen pixels ``(ys, xs)`` of ``frame [H, W, 3]`` (float32, modified in place).

    Pixels whose flow leads into the previous output frame take its (already filled) colour, so
    a spatial fill made once moves with the background; the rest get a Telea fill from the
    pixels around them.
    """
    h, w = frame.shape[:2]
    spatial = np.ones(ys.size, bool)
    if previous is not None and to_previous is not None and ys.size:
        motion = _sample(to_previous, ys.astype(np.float32), xs.astype(np.float32))
        qy, qx = ys + motion[:, 1], xs + motion[:, 0]
        inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        frame[ys[inside], xs[inside]] = _sample(previous, qy[inside], qx[inside])
        spatial = ~inside
    if spatial.any():
        mask = np.zeros((h, w), np.uint8)
        mask[ys[spatial], xs[spatial]] = 255
        rounded = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        painted = cv2.inpaint(rounded, mask, radius, cv2.INPAINT_TELEA)
        frame[ys[spatial], xs[spatial]] = painted[ys[spatial], xs[spatial]]
    return frame


def _fill_frame(win: _Window, local: int, hole: np.ndarray, previous: np.ndarray | None,
                settings: FlowFillSettings) -> np.ndarray:
    """One output frame ``[H, W, 3]`` uint8.

    Propagation, then the carried/spatial fill for the pixels it did not reach, then the blend
    with the previous output along the flow, then the boundary match.
    """
    frame = win.frames[local].copy()  # [H, W, 3] float32
    ys, xs = np.nonzero(hole)
    if ys.size:
        values, reached = _propagate(win, local, hole, settings.max_propagation)
        frame[ys[reached], xs[reached]] = values[reached]
        rest = ~reached
        to_previous = win.backward[local - 1] if local > 0 else None
        _carry_and_fill(frame, ys[rest], xs[rest], previous if local > 0 else None,
                        to_previous, settings.spatial_radius)
        if local > 0 and previous is not None:
            _blend_with_previous(frame, ys, xs, previous, win.backward[local - 1], _OWN_WEIGHT)
        _match_boundary(frame, hole)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _blend_with_previous(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, previous: np.ndarray,
                         to_previous: np.ndarray, weight: float) -> None:
    """Blend hole pixels ``(ys, xs)`` of ``frame`` with the previous output carried along the flow.

    ``frame = weight * frame + (1 - weight) * previous(p + flow)`` in place, where the flow
    leads inside the frame: a recursive filter along the motion that calms the flicker of
    fills taken from different source frames, while the boundary match that follows keeps
    the result seamless. ``to_previous [H, W, 2]`` is the completed flow into the previous frame.
    """
    h, w = frame.shape[:2]
    motion = _sample(to_previous, ys.astype(np.float32), xs.astype(np.float32))
    qy, qx = ys + motion[:, 1], xs + motion[:, 0]
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    carried = _sample(previous, qy[inside], qx[inside])
    frame[ys[inside], xs[inside]] = weight * frame[ys[inside], xs[inside]] + (1.0 - weight) * carried


def _window_mean(image: np.ndarray, where: np.ndarray, size: int, fallback: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``image [H, W, C]`` over the ``where`` pixels of each ``size`` x ``size`` window.

    Windows without such pixels give ``fallback`` (same shape as ``image``), or 0.
    """
    kernel = np.ones((size, size), np.float32)
    total = cv2.filter2D(image * where[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    count = cv2.filter2D(where.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)[..., None]
    mean = total / np.maximum(count, 1.0)
    return mean if fallback is None else np.where(count > 0, mean, fallback)


def _match_boundary(frame: np.ndarray, hole: np.ndarray) -> None:
    """Shift the fill of ``hole`` so that it meets the frame around it without a step (in place).

    Propagated pixels come from other frames, where light, exposure, haze or spray may differ;
    the difference shows as an edge along the hole's outline. As in Poisson cloning with the
    fill's own gradients as guidance, the colour jump across the outline, measured on the ring of
    known pixels around the hole, is spread smoothly over the hole (a membrane) and removed.
    Gradients that cross the outline are not counted as a jump (see below), and texture makes
    jumps of either sign: the jump is averaged along the ring and shrunk towards zero where it
    does not stand out of that noise (``m^2 / (m^2 + s^2 / n)``), so a fill that already matches
    is left nearly as it is. ``frame [H, W, 3]`` float32, ``hole [H, W]`` bool.
    """
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - 3), min(h, ys.max() + 4)
    x0, x1 = max(0, xs.min() - 3), min(w, xs.max() + 4)
    box, inside = frame[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~inside
    if ring.sum() < _MIN_RING:
        return  # the hole covers (nearly) the whole frame: nothing to match against
    # The jump across the outline under a piecewise-linear model: known values 1 and 2 px out
    # (o1, o2), fill values 1 and 2 px in (i1, i2); a ramp running across gives zero, an offset
    # of the fill gives the offset.
    square = np.ones((3, 3), np.uint8)
    first = inside & cv2.dilate(ring.astype(np.uint8), square).astype(bool)
    second = inside & ~first & cv2.dilate(first.astype(np.uint8), square).astype(bool)
    outer = ~inside & ~ring & cv2.dilate(ring.astype(np.uint8), square).astype(bool)
    i1 = _window_mean(box, first, 3)
    i2 = _window_mean(box, second, 5, fallback=i1)  # a hole 1-2 px thin: no second layer
    o2 = _window_mean(box, outer, 3, fallback=box)  # the frame's edge: no second ring
    step = np.where(ring[..., None], (3.0 * box - o2 - 3.0 * i1 + i2) / 2.0, 0.0).astype(np.float32)
    mean = _window_mean(step, ring, _BOUNDARY_WINDOW)
    spread = np.maximum(_window_mean(step * step, ring, _BOUNDARY_WINDOW) - mean * mean, 0.0)
    ring_pixels = cv2.filter2D(ring.astype(np.float32), -1, np.ones((_BOUNDARY_WINDOW,) * 2, np.float32),
                               borderType=cv2.BORDER_CONSTANT)
    samples = np.maximum(ring_pixels / _RING_CORRELATION, 1.0)[..., None]
    settled = mean * (mean * mean / np.maximum(mean * mean + spread / samples, 1e-6))
    correction = _membrane(settled, ring, inside, _BOUNDARY_RELAX)
    box[inside] += correction[inside]


def _pair_flows(gray: Callable[[int], np.ndarray], raw: Callable[[int], np.ndarray], pair: int,
                settings: FlowFillSettings) -> tuple[np.ndarray, np.ndarray]:
    """Completed (forward, backward) flow ``[H, W, 2]`` between frames ``pair`` and ``pair + 1``.

    ``gray(i)`` and ``raw(i)`` give frame ``i`` in grey and its undilated mask (bool).
    """
    first = _smooth_over(gray(pair), dilate_holes(raw(pair), _GREY_FILL_DILATION))
    second = _smooth_over(gray(pair + 1), dilate_holes(raw(pair + 1), _GREY_FILL_DILATION))
    region = dilate_holes(raw(pair) | raw(pair + 1), settings.flow_mask_dilation)
    forward = complete_flow(dis_flow(first, second, settings.flow_preset), region)
    backward = complete_flow(dis_flow(second, first, settings.flow_preset), region)
    return forward, backward


def _smooth_over(grey: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``grey [H, W]`` uint8 with the hole replaced by a smooth fill from around it.

    The object's own edges would pull DIS's patches along with the object; a featureless blob
    leaves the flow near the hole to the background.
    """
    if not hole.any() or hole.all():
        return grey
    known = (~hole).astype(np.float32)
    smooth = _push_pull(grey.astype(np.float32)[..., None] * known[..., None], known)[..., 0]
    return np.where(hole, np.clip(np.rint(smooth), 0, 255), grey).astype(np.uint8)


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
                _check_cancel(should_cancel)
                flows[pair] = _pair_flows(gray, raw, pair, settings)
        win = None  # drop the previous window before building the next (one window in memory)
        win = _make_window(frames, np.stack([hole(i) for i in range(first, last)]), flows, first)
        for index in range(start, end):
            _check_cancel(should_cancel)
            if hole(index).any():
                out[index] = _fill_frame(win, index - first, hole(index), previous, settings)
            previous = out[index].astype(np.float32)
            if progress is not None:
                progress(index + 1, total)
    return out


def _make_window(frames: np.ndarray, holes: np.ndarray, flows: dict[int, tuple[np.ndarray, np.ndarray]],
                 first: int) -> _Window:
    """The window of frames ``first .. first + len(holes) - 1``; ``holes`` are theirs (dilated)."""
    last = first + len(holes)
    h, w = frames.shape[1:3]
    pairs = range(first, last - 1)
    empty = np.zeros((0, h, w, 2), np.float32)
    return _Window(
        start=first,
        frames=frames[first:last].astype(np.float32),
        safe=_safe_to_sample(~holes),
        forward=np.stack([flows[p][0] for p in pairs]) if len(pairs) else empty,
        backward=np.stack([flows[p][1] for p in pairs]) if len(pairs) else empty,
    )


def _check_cancel(should_cancel: Callable[[], bool] | None) -> None:
    if should_cancel is not None and should_cancel():
        raise InpaintCancelled("inpainting was cancelled")
