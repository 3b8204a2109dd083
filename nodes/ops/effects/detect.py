"""Find what an object casts (shadow, reflection) in a window of frames, or in a whole clip.

The stages, one module each:

1. :mod:`.background` - each frame's background from its neighbours aligned by the camera motion;
2. :mod:`.shadow` - darker than the background with the chromaticity kept, cut at half depth;
   :mod:`.reflection` - the object mirrored about its contact line, seen in the change;
3. :mod:`.temporal` - within reach of the object, and moving with it from frame to frame.

**Temporal context.** The effects of frame t need the frames ``t - C .. t + C`` with
``C = context_frames(settings)`` (the farthest background neighbour, plus one frame for the
motion check). :func:`find_effects_window` takes a window that holds that context around the
frames it answers for, so a streaming caller gets exactly the whole-clip result; frames beyond
the clip's ends are simply not there (both give the same answer).

Arrays are numpy on the CPU: frames uint8 ``[T, H, W, 3]`` RGB, masks bool ``[T, H, W]``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Literal

import cv2
import numpy as np

from . import background as bg_mod
from . import temporal
from .reflection import reflection_region
from .shadow import half_depth_regions, shadow_evidence

logger = logging.getLogger(__name__)

EffectsCancelled = bg_mod.Cancelled  # raised between frames when ``should_cancel()`` returned True

EffectKind = Literal["shadow", "reflection", "shadow + reflection"]
EFFECT_KINDS: tuple[str, ...] = ("shadow", "reflection", "shadow + reflection")
# How many frames on each side the motion check compares with.
MOTION_NEIGHBOURS = 1
# Regions smaller than this fraction of the frame (and than MIN_AREA_PX) are noise.
MIN_AREA_FRACTION = 1e-4
MIN_AREA_PX = 12
# Sensitivity 0..1 maps linearly onto these (at 0, at 1): the darkening a shadow's core needs,
# and the reflectance a reflection needs.
SEED_DARKENING = (0.45, 0.05)
REFLECTANCE = (0.2, 0.02)
# Beyond the reach, the work box keeps this many pixels for the blurs and the misalignment gate.
BOX_MARGIN = 8
# A region must come within this fraction of max_reach of the object.
CONTACT_GAP_FRACTION = 0.25


@dataclass(frozen=True)
class EffectsSettings:
    """What to look for and how hard.

    Attributes:
        effects: "shadow", "reflection" or "shadow + reflection".
        sensitivity: 0..1; higher finds fainter shadows and reflections (and more false ones).
        max_reach: pixels; effects lie at most this far from the object.
        offsets: the background's neighbour frames (see :mod:`.background`).
    """

    effects: EffectKind = "shadow"
    sensitivity: float = 0.5
    max_reach: int = 96
    offsets: tuple[int, ...] = bg_mod.NEIGHBOUR_OFFSETS

    def _lerp(self, ends: tuple[float, float]) -> float:
        s = min(max(float(self.sensitivity), 0.0), 1.0)
        return ends[0] + (ends[1] - ends[0]) * s

    @property
    def seed_darkening(self) -> float:
        return self._lerp(SEED_DARKENING)

    @property
    def min_reflectance(self) -> float:
        return self._lerp(REFLECTANCE)


def context_frames(settings: EffectsSettings) -> int:
    """Frames of context needed on each side of a frame (see the module docstring)."""
    reach = max((abs(o) for o in settings.offsets), default=0)
    return reach + MOTION_NEIGHBOURS


def _min_area(shape: tuple[int, int]) -> int:
    return max(MIN_AREA_PX, int(round(MIN_AREA_FRACTION * shape[0] * shape[1])))


def _box(obj: np.ndarray, grow: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the mask's bounding box grown by ``grow`` px, inside the frame."""
    ys, xs = np.nonzero(obj.any(1))[0], np.nonzero(obj.any(0))[0]
    h, w = obj.shape
    return (max(0, int(ys[0]) - grow), min(h, int(ys[-1]) + 1 + grow),
            max(0, int(xs[0]) - grow), min(w, int(xs[-1]) + 1 + grow))


class _Detector:
    """Lazy, cached per-frame candidates of one window (indices into the window)."""

    def __init__(self, frames: np.ndarray, objects: np.ndarray, path: bg_mod.CameraPath,
                 settings: EffectsSettings, should_cancel: Callable[[], bool] | None) -> None:
        self.frames, self.objects, self.path, self.settings = frames, objects, path, settings
        self.should_cancel = should_cancel
        self.cache: dict[int, np.ndarray] = {}
        self.min_area = _min_area(objects.shape[1:])

    def candidate(self, t: int) -> np.ndarray:
        """Frame t's effects before the motion check: ``[H, W]`` bool."""
        if t not in self.cache:
            if self.should_cancel is not None and self.should_cancel():
                raise EffectsCancelled()
            self.cache[t] = self._regions(t)
        return self.cache[t]

    def _regions(self, t: int) -> np.ndarray:
        obj_full, settings = self.objects[t], self.settings
        found_full = np.zeros_like(obj_full)
        if not obj_full.any():
            return found_full
        # all the work happens in the object's box grown by the reach (and a margin for blurs)
        y0, y1, x0, x1 = _box(obj_full, settings.max_reach + BOX_MARGIN)
        obj, frame = obj_full[y0:y1, x0:x1], self.frames[t][y0:y1, x0:x1]
        reach = temporal.within_reach(obj, settings.max_reach)
        allowed = temporal.search_area(obj, settings.max_reach)
        background = bg_mod.background(self.frames, self.objects, t, self.path, settings.offsets, (y0, y1, x0, x1))
        found = np.zeros_like(obj)
        if settings.effects in ("shadow", "shadow + reflection"):
            seed = settings.seed_darkening
            evidence = shadow_evidence(frame, background, 0.5 * seed)
            shadows = half_depth_regions(evidence, allowed, seed, self.min_area)
            luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
            found |= temporal.fill_enclosed(shadows, obj, luma, reach)
        if settings.effects in ("reflection", "shadow + reflection"):
            found |= reflection_region(frame, background, obj, allowed, settings.min_reflectance)
        found_full[y0:y1, x0:x1] = temporal.near_contact(found, obj, CONTACT_GAP_FRACTION * settings.max_reach)
        return found_full

    def forget_before(self, t: int) -> None:
        """Drop cached frames no later frame needs (those before ``t``)."""
        for stale in [k for k in self.cache if k < t]:
            del self.cache[stale]

    def effects(self, t: int) -> np.ndarray:
        """Frame t's final effects: candidates that move with the object, contact ring closed."""
        found = self.candidate(t)
        if not found.any():
            return found
        n = self.frames.shape[0]
        others = [(self.objects[s], self.candidate(s), self.path.between(t, s))
                  for s in (t - MOTION_NEIGHBOURS, t + MOTION_NEIGHBOURS) if 0 <= s < n]
        found = temporal.moves_with_object(found, self.objects[t], others)
        return temporal.close_contact(found, self.objects[t]) & ~self.objects[t]


def find_effects_window(frames: np.ndarray, objects: np.ndarray, start: int, stop: int,
                        settings: EffectsSettings, *, path: bg_mod.CameraPath | None = None,
                        should_cancel: Callable[[], bool] | None = None,
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Effects of frames ``start .. stop-1`` of a window that holds their temporal context.

    The window should reach :func:`context_frames` frames beyond ``start`` and ``stop`` (or the
    clip's ends); then the answer equals the whole-clip answer for those frames.

    Args:
        frames: uint8 ``[N, H, W, 3]``, the window (context frames included).
        objects: ``[N, H, W]`` object masks of the same frames, nonzero = object.
        start, stop: the frames to answer for, as indices into the window.
        path: the window's camera motion (computed here when None).
        should_cancel: polled between frames; True raises :class:`EffectsCancelled`.
        progress: called with the number of frames answered so far.
    Returns:
        bool ``[stop - start, H, W]``: effects only (never on the object), contact ring included.
    """
    objects = np.asarray(objects) != 0
    out = np.zeros((stop - start, *objects.shape[1:]), bool)
    if not objects.any():
        return out
    if path is None:
        path = bg_mod.camera_path(frames, objects, should_cancel)
    detector = _Detector(frames, objects, path, settings, should_cancel)
    context = context_frames(settings)
    for t in range(start, stop):
        out[t - start] = detector.effects(t)
        detector.forget_before(t - context)
        if progress is not None:
            progress(t - start + 1)
    return out


def find_effects(frames: np.ndarray, objects: np.ndarray, settings: EffectsSettings | None = None, *,
                 progress: Callable[[int, int], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Effects of every frame of a clip held in memory.

    One detector walks the clip and forgets what no later frame needs, so its caches stay
    within :func:`context_frames` of the current frame; the answer equals
    :func:`find_effects_window` on any window that holds the context.

    Args:
        frames: uint8 ``[T, H, W, 3]``. objects: ``[T, H, W]``, nonzero = object.
        progress: called as ``progress(frames_done, T)``.
        should_cancel: polled between frames; True raises :class:`EffectsCancelled`.
    Returns:
        bool ``[T, H, W]``, effects only.
    """
    settings = settings or EffectsSettings()
    objects = np.asarray(objects) != 0
    total = frames.shape[0]
    out = np.zeros(objects.shape, bool)
    if not objects.any():
        return out
    detector = _Detector(frames, objects, bg_mod.camera_path(frames, objects, should_cancel), settings,
                         should_cancel)
    context = context_frames(settings)
    for t in range(total):
        out[t] = detector.effects(t)
        detector.forget_before(t - context)
        if progress is not None:
            progress(t + 1, total)
    return out
