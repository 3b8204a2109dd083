"""Numerical helpers the stages share: scattered bilinear sampling, push-pull and membranes, window means,
mask boxes."""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .settings import check_cancel

# Points per row of the remap maps used for scattered bilinear sampling.
_REMAP_COLUMNS = 4096
# OpenCV's remap reads images of fewer rows than this (SHRT_MAX); a taller one (a window's frames
# stacked, see pair_match: 120 frames of 540 rows) is sampled in bands of _REMAP_BAND rows.
_REMAP_MAX_ROWS = 32767
_REMAP_BAND = 16384


def sample(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image [H, W, C]`` (float32) at float positions, clamped to the frame.

    OpenCV's remap does the gather in C (positions quantised to 1/32 px, far below the flow's
    own accuracy); the points are laid out as a 2-D map because remap's maps are images. An
    image of :data:`_REMAP_MAX_ROWS` rows or more is read band by band, each point from the band
    that holds its row (and the row below it).

    Returns:
        ``[K, C]`` float32.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    if y.size == 0:
        return np.zeros((0, channels), np.float32)
    if image.shape[0] < _REMAP_MAX_ROWS:
        return _remap_points(image, y, x, channels)
    out = np.empty((y.size, channels), np.float32)
    row = np.clip(np.floor(y), 0, image.shape[0] - 1)
    for start in range(0, image.shape[0], _REMAP_BAND):
        at = np.nonzero((row >= start) & (row < start + _REMAP_BAND))[0]
        if at.size:
            band = image[start:start + _REMAP_BAND + 1]
            out[at] = _remap_points(band, y[at] - start, x[at], channels)
    return out


def _remap_points(image: np.ndarray, y: np.ndarray, x: np.ndarray, channels: int) -> np.ndarray:
    """:func:`sample` of an image remap can read whole: ``[K, C]`` float32."""
    k = y.size
    cols = min(k, _REMAP_COLUMNS)
    rows = -(-k // cols)
    map_x = np.zeros(rows * cols, np.float32)
    map_y = np.zeros(rows * cols, np.float32)
    map_x[:k], map_y[:k] = x, y
    out = cv2.remap(image, map_x.reshape(rows, cols), map_y.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, channels)[:k]


def channel_sum(values: np.ndarray) -> np.ndarray:
    """``values.sum(-1)`` over a short last axis (a flow's 2 components, a colour's 3): the same numbers.

    numpy adds fewer than 8 elements along an axis one after the other, as this does; its
    reduction machinery costs far more per pixel than the additions at these sizes (about 50x
    for ``[K, 2]``). Not for longer axes, which numpy sums pairwise.
    """
    count = values.shape[-1]
    if count >= 8:
        raise ValueError(f"channel_sum is for fewer than 8 channels, got {count}")
    total = values[..., 0].copy()
    for channel in range(1, count):
        total += values[..., channel]
    return total


def squared_length(vectors: np.ndarray) -> np.ndarray:
    """``(vectors ** 2).sum(-1)`` for flows and colours (see :func:`channel_sum`): the same numbers."""
    return channel_sum(vectors * vectors)


def membrane(values: np.ndarray, fixed: np.ndarray, free: np.ndarray, iterations: int,
             should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Smooth interpolation of ``values [H, W, C]`` from the ``fixed`` pixels into the ``free`` ones.

    A push-pull pyramid gives the first guess, then Jacobi steps of the Laplace equation (3x3
    means) relax the ``free`` pixels with the ``fixed`` ones held; pixels that are neither keep
    their push-pull value and take part in the means. Returns ``[H, W, C]`` float32 equal to
    ``values`` on ``fixed``. ``should_cancel`` is polled every :data:`_CANCEL_EVERY` steps (over a
    large hole in a large frame the steps take about a second).
    """
    weight = fixed.astype(np.float32)
    filled = push_pull(values * weight[..., None], weight)
    filled = np.where(fixed[..., None], values, filled).astype(np.float32)
    # The steps run on the free pixels' box grown by one pixel (a free pixel's 3x3 mean reads only
    # that box; where it meets the frame's edge the edge repeats, as over the whole). cv2.copyTo
    # writes the free pixels in place: numpy's copyto through a broadcast mask took 9/10 of the
    # membrane's time at 854x480.
    box = grown_box(free, 1)
    if box is None:  # nothing to relax
        return filled
    y0, y1, x0, x1 = box
    part = np.ascontiguousarray(filled[y0:y1, x0:x1])
    free_u8 = free[y0:y1, x0:x1].astype(np.uint8)
    for step in range(iterations):
        if step % _CANCEL_EVERY == 0:
            check_cancel(should_cancel)
        cv2.copyTo(cv2.blur(part, (3, 3), borderType=cv2.BORDER_REPLICATE), free_u8, part)
    filled[y0:y1, x0:x1] = part
    return filled


# membrane polls the cancel every this many relaxation steps.
_CANCEL_EVERY = 10


def push_pull(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
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


def local_affine(values: np.ndarray, fixed: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float,
                 ridge: float, should_cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Moving least squares: at each point ``(ys, xs)``, the affine function of position that best fits
    ``values [H, W, C]`` over the ``fixed`` pixels, weighted by a Gaussian of width ``sigma`` px
    around the point, evaluated there.

    Where a membrane flattens a field towards its boundary's mean, a local plane continues its
    trend: a thing that turns or comes nearer moves a little differently at each place, and the
    hidden part of it goes on doing so. ``ridge`` pulls the plane's slopes towards none (in units
    of the weights' total, per ``sigma`` px), so a few fixed pixels on one side give a near-constant
    fit, not a steep extrapolation.

    Returns ``[K, C]`` float32 the fits, and ``[K]`` float32 the Gaussian mass of fixed pixels around
    each point (1: surrounded by them; near 0: none within a few ``sigma``), for the caller to
    trust the fit by. ``should_cancel`` is polled between the sums (over a fifth of a 4K frame the
    fit takes about a second).
    """
    h, w = fixed.shape
    # Positions in units of sigma about the middle, so the normal equations stay well scaled.
    gy, gx = np.mgrid[:h, :w].astype(np.float32)
    gy = (gy - h / 2.0) / sigma
    gx = (gx - w / 2.0) / sigma
    weight = fixed.astype(np.float32)
    products = [weight, weight * gx, weight * gy, weight * gx * gx, weight * gx * gy, weight * gy * gy]
    for channel in range(values.shape[-1]):
        value = values[..., channel].astype(np.float32) * weight
        products += [value, value * gx, value * gy]
    sums = _gaussian_sums(products, ys, xs, sigma, should_cancel)  # [K, 6 + 3 C] float64
    check_cancel(should_cancel)
    s0, sx, sy, sxx, sxy, syy = sums[:, :6].T
    # The symmetric normal matrix [[s0, sx, sy], [sx, a, sxy], [sy, sxy, b]], solved by its adjugate.
    tiny = 1e-9
    s0r = s0 + tiny
    a, b = sxx + ridge * s0 + tiny, syy + ridge * s0 + tiny
    c00, c01, c02 = a * b - sxy * sxy, sy * sxy - sx * b, sx * sxy - sy * a
    c11, c12, c22 = s0r * b - sy * sy, sx * sy - s0r * sxy, s0r * a - sx * sx
    det = s0r * c00 + sx * c01 + sy * c02
    px, py = gx[ys, xs].astype(np.float64), gy[ys, xs].astype(np.float64)
    # The fit at the point: [1, px, py] . inverse(M) . rhs = (row . rhs) / det.
    row0 = c00 + px * c01 + py * c02
    row1 = c01 + px * c11 + py * c12
    row2 = c02 + px * c12 + py * c22
    fits = np.empty((ys.size, values.shape[-1]), np.float32)
    for channel in range(values.shape[-1]):
        f, fx, fy = sums[:, 6 + 3 * channel:9 + 3 * channel].T
        fits[:, channel] = (row0 * f + row1 * fx + row2 * fy) / det
    return fits, s0.astype(np.float32)


def _gaussian_sums(images: list[np.ndarray], ys: np.ndarray, xs: np.ndarray, sigma: float,
                   should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """``[K, N]`` float64: each of the ``N`` images ``[H, W]`` float32 blurred by a Gaussian of ``sigma`` px
    (zero outside), at the points ``(ys, xs)``; ``should_cancel`` is polled between blurs.

    A wide Gaussian is taken on the images shrunk by :func:`_shrink_factor` (means of square blocks,
    the frame padded with zeros to whole blocks), with the Gaussian shrunk alike, and read at the
    points bilinearly: the block means and the bilinear read widen a 12-px Gaussian by under 2 %
    (variances add), and :func:`local_affine` runs 2.5x faster (at 432 px its full-size blurs took
    8 % of flow_fill's time).
    """
    factor = _shrink_factor(sigma)
    h, w = images[0].shape
    if factor > 1:
        rows, cols = -(-h // factor), -(-w // factor)
        small_y = (ys + 0.5) / factor - 0.5
        small_x = (xs + 0.5) / factor - 0.5
    out = np.empty((ys.size, len(images)), np.float64)
    for index, image in enumerate(images):  # one channel a call: faster than four at once
        if index % 4 == 0:
            check_cancel(should_cancel)
        if factor == 1:
            out[:, index] = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)[ys, xs]
            continue
        padded = cv2.copyMakeBorder(image, 0, rows * factor - h, 0, cols * factor - w, cv2.BORDER_CONSTANT, value=0)
        small = cv2.resize(padded, (cols, rows), interpolation=cv2.INTER_AREA)
        blurred = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_CONSTANT)
        out[:, index] = sample(blurred, small_y, small_x)[:, 0]
    return out


def _shrink_factor(sigma: float) -> int:
    """The block side (px) by which :func:`_gaussian_sums` shrinks its images for a Gaussian of ``sigma``
    px: a quarter of it, whole px (1: not shrunk, under 8 px)."""
    return max(1, int(sigma // 4))


def window_mean(image: np.ndarray, where: np.ndarray, size: int, fallback: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``image [H, W, C]`` over the ``where`` pixels of each ``size`` x ``size`` window.

    Windows without such pixels give ``fallback`` (same shape as ``image``), or 0.
    """
    kernel = np.ones((size, size), np.float32)
    total = cv2.filter2D(image * where[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    count = cv2.filter2D(where.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)[..., None]
    mean = total / np.maximum(count, 1.0)
    return mean if fallback is None else np.where(count > 0, mean, fallback)


# Motion components below this (px) are taken as none when a fill is carried to the next frame:
# DIS measures a still background with a few tenths of a pixel of noise, and resampling a
# textured fill at such offsets every frame makes it shimmer and slowly blur.
STILL_PX = 0.5


def carried_step(flow: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where integer pixels ``(ys, xs)`` land one step along ``flow [H, W, 2]``, components under
    :data:`STILL_PX` taken as none: ``y [K]``, ``x [K]`` (float32) and ``[K]`` bool, inside the frame."""
    h, w = flow.shape[:2]
    motion = flow[ys, xs]
    motion = np.where(np.abs(motion) < STILL_PX, 0.0, motion).astype(np.float32)
    qy, qx = ys + motion[:, 1], xs + motion[:, 0]
    return qy, qx, (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)


def grown_box(mask: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the bounding box of ``mask [H, W]`` (bool) grown by ``margin`` px on
    each side and clipped to the frame, or None when the mask is empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    h, w = mask.shape
    return (max(0, ys.min() - margin), min(h, ys.max() + 1 + margin),
            max(0, xs.min() - margin), min(w, xs.max() + 1 + margin))
