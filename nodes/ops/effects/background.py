"""Background estimate per frame: neighbouring frames aligned by the camera motion, then a median.

A cast shadow or reflection moves with its object, so at a given spot of the ground it is present
in only a few frames. The same spot seen in other frames (aligned by the camera motion) is the
ground without it. Static things (a tree's shadow, dark paint, a parked car) are present in every
frame and therefore in the background too, which is why the ratio test in :mod:`.shadow` never
sees them.

* **Camera motion.** One homography per pair of consecutive frames, fitted with RANSAC to sparse
  KLT tracks (``cv2.goodFeaturesToTrack`` + ``cv2.calcOpticalFlowPyrLK``) outside the object.
  Tracks near the object come first: the ground the effects fall on is near the object, and with
  parallax a frame-wide fit follows whichever plane is largest (the facades, the distant trees).
  Longer jumps are the product of the pairs.
* **Votes.** Each neighbour (offsets :data:`NEIGHBOUR_OFFSETS`) is warped into the frame; pixels
  that fall outside it or under its object (grown a little) do not vote. The votes are ranked by
  luminance and the one at :data:`BACKGROUND_QUANTILE` is the background (its colour taken
  whole): above the median, because a slow object's shadow still covers the spot in some
  neighbours, and those votes are darker. A pixel with fewer than :data:`MIN_VOTES` votes has
  none (NaN).

Arrays are numpy on the CPU: frames uint8 ``[T, H, W, 3]`` RGB, masks bool ``[T, H, W]``.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .temporal import grow

# Neighbours that vote for the background of frame t, as offsets in frames. Far ones let a slow
# object uncover the ground under its shadow; near ones keep the lighting and the parallax close.
NEIGHBOUR_OFFSETS: tuple[int, ...] = (-30, -18, -10, -4, 4, 10, 18, 30)
# Which ranked vote is the background (0 = darkest, 1 = brightest).
BACKGROUND_QUANTILE = 0.7
# A pixel needs this many valid votes to have a background; a missing vote's luminance.
MIN_VOTES = 2
NO_VOTE = 1000
# The neighbour's object is grown by this many pixels before it is excluded (edges, blur).
OBJECT_GUARD = 3
# KLT tracks: corners per frame, spacing, and how far (in object sizes) "near the object" reaches.
_MAX_CORNERS = 600
_MIN_DISTANCE = 5
_NEAR_FACTOR = 1.0
_MIN_NEAR_TRACKS = 40
_MIN_TRACKS = 8
_RANSAC_PX = 1.5


def _near_object(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: the object's bounding box grown by its size times ``_NEAR_FACTOR``."""
    near = np.zeros_like(mask)
    if not mask.any():
        return near
    ys, xs = np.nonzero(mask)
    grow_y = int((ys.max() - ys.min() + 1) * _NEAR_FACTOR)
    grow_x = int((xs.max() - xs.min() + 1) * _NEAR_FACTOR)
    near[max(0, ys.min() - grow_y):ys.max() + 1 + grow_y, max(0, xs.min() - grow_x):xs.max() + 1 + grow_x] = True
    return near


def pair_homography(gray_a: np.ndarray, gray_b: np.ndarray, object_a: np.ndarray,
                    object_b: np.ndarray) -> np.ndarray:
    """Homography ``[3, 3]`` mapping frame a's pixel coordinates to frame b's.

    Fitted to KLT tracks that start and end off the object (grown by :data:`OBJECT_GUARD`),
    preferring the tracks near the object. Identity when there are too few tracks.

    Args:
        gray_a, gray_b: uint8 ``[H, W]``. object_a, object_b: bool ``[H, W]``.
    """
    identity = np.eye(3)
    allowed = (~grow(object_a, OBJECT_GUARD)).astype(np.uint8)
    corners = cv2.goodFeaturesToTrack(gray_a, _MAX_CORNERS, 0.01, _MIN_DISTANCE, mask=allowed)
    if corners is None or len(corners) < _MIN_TRACKS:
        return identity
    moved, status, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, corners, None, winSize=(21, 21), maxLevel=3)
    src, dst = corners.reshape(-1, 2), moved.reshape(-1, 2)
    h, w = gray_a.shape
    inside = (dst[:, 0] >= 0) & (dst[:, 0] <= w - 1) & (dst[:, 1] >= 0) & (dst[:, 1] <= h - 1)
    ok = status.ravel().astype(bool) & inside & np.isfinite(dst).all(1)
    blocked_b = grow(object_b, OBJECT_GUARD)
    ok[ok] &= ~blocked_b[dst[ok, 1].round().astype(int), dst[ok, 0].round().astype(int)]
    src, dst = src[ok], dst[ok]
    if len(src) < _MIN_TRACKS:
        return identity
    near = _near_object(object_a)[src[:, 1].round().astype(int), src[:, 0].round().astype(int)]
    if near.sum() >= _MIN_NEAR_TRACKS:
        src, dst = src[near], dst[near]
    matrix, _ = cv2.findHomography(src, dst, cv2.RANSAC, _RANSAC_PX)
    if matrix is None or not np.isfinite(matrix).all():
        return identity
    return matrix


class CameraPath:
    """Homographies between any two frames of a window, from the consecutive pairs.

    Args:
        pair_matrices: ``pair_matrices[i]`` maps frame i to frame i+1 (``len = T - 1``).
    """

    def __init__(self, pair_matrices: list[np.ndarray]) -> None:
        self.pairs = pair_matrices

    def between(self, source: int, target: int) -> np.ndarray:
        """``[3, 3]`` mapping frame ``source`` coordinates to frame ``target`` coordinates."""
        matrix = np.eye(3)
        if target > source:
            for i in range(source, target):
                matrix = self.pairs[i] @ matrix
        else:
            for i in range(source - 1, target - 1, -1):
                matrix = np.linalg.inv(self.pairs[i]) @ matrix
        return matrix / matrix[2, 2] if abs(matrix[2, 2]) > 1e-12 else matrix


def camera_path(frames: np.ndarray, objects: np.ndarray,
                should_cancel: Callable[[], bool] | None = None) -> CameraPath:
    """Fit :func:`pair_homography` to every consecutive pair of ``frames [T, H, W, 3]``.

    ``should_cancel`` is polled between pairs; when it returns True the fit stops and
    :class:`Cancelled` is raised.
    """
    pairs = []
    previous = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    for i in range(len(frames) - 1):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        current = cv2.cvtColor(frames[i + 1], cv2.COLOR_RGB2GRAY)
        pairs.append(pair_homography(previous, current, objects[i], objects[i + 1]))
        previous = current
    return CameraPath(pairs)


class Cancelled(Exception):
    """The caller's ``should_cancel`` returned True."""


def neighbours(t: int, count: int, offsets: tuple[int, ...] = NEIGHBOUR_OFFSETS) -> list[int]:
    """The frames (indices in ``0..count-1``) that vote for frame ``t``'s background.

    An offset past an end of the clip takes the frame at that end instead (once), so short
    clips and the first and last frames still get votes from both sides where there are any.
    """
    out: list[int] = []
    for offset in offsets:
        s = min(max(t + offset, 0), count - 1)
        if s != t and s not in out:
            out.append(s)
    return out


def background(frames: np.ndarray, objects: np.ndarray, t: int, path: CameraPath,
               offsets: tuple[int, ...] = NEIGHBOUR_OFFSETS,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Frame ``t``'s background: float32 ``[h, w, 3]`` in 0..255, NaN where too few frames vote.

    Args:
        frames: uint8 ``[T, H, W, 3]`` (the window, context included).
        objects: bool ``[T, H, W]`` object masks.
        t: the frame, an index into ``frames``.
        path: the window's camera motion.
        box: ``(y0, y1, x0, x1)``: only this part of the frame (default: all of it); the
            result is ``[y1 - y0, x1 - x0, 3]`` and equals that crop of the whole background.
    """
    y0, y1, x0, x1 = box if box is not None else (0, frames.shape[1], 0, frames.shape[2])
    h, w = y1 - y0, x1 - x0
    sources = neighbours(t, frames.shape[0], offsets)
    if not sources:
        return np.full((h, w, 3), np.nan, np.float32)
    to_box = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    stack = np.empty((len(sources), h, w, 3), np.uint8)  # [K, h, w, 3]
    luma = np.empty((len(sources), h, w), np.int16)  # [K, h, w]; no vote: NO_VOTE
    for k, s in enumerate(sources):
        matrix = to_box @ path.between(s, t)
        stack[k] = cv2.warpPerspective(frames[s], matrix, (w, h), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        blocked = grow(objects[s], OBJECT_GUARD)
        valid = cv2.warpPerspective((~blocked).astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
        luma[k] = cv2.cvtColor(stack[k], cv2.COLOR_RGB2GRAY)
        luma[k][~valid] = NO_VOTE
    return ranked_vote(stack, luma, BACKGROUND_QUANTILE)


def ranked_vote(stack: np.ndarray, luma: np.ndarray, quantile: float) -> np.ndarray:
    """Per pixel, the vote at ``quantile`` of the valid votes ranked by luminance.

    Args:
        stack: uint8 ``[K, H, W, 3]`` votes. luma: int16 ``[K, H, W]`` their luminance,
            :data:`NO_VOTE` where a vote is missing.
    Returns:
        float32 ``[H, W, 3]`` in 0..255, NaN where fewer than :data:`MIN_VOTES` votes.
    """
    votes = (luma != NO_VOTE).sum(0)  # [H, W]
    order = np.argsort(luma, axis=0)  # [K, H, W]; missing votes rank last
    pick = np.ceil(quantile * np.maximum(votes - 1, 0) - 1e-6).astype(np.int64)  # [H, W]; few votes: brighter
    index = np.take_along_axis(order, pick[None], axis=0)  # [1, H, W]
    out = np.take_along_axis(stack, index[..., None], axis=0)[0].astype(np.float32)  # [H, W, 3]
    out[votes < MIN_VOTES] = np.nan
    return out
