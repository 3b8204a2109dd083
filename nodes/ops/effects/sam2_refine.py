"""SAM 2 refinement: the found effects region becomes a second tracked object.

The weights-free finder gives a region with the right place and extent but a blocky edge where
the ground is busy. SAM 2, prompted with that region's box and an inner point (and with the
object itself as a first object, so the two are told apart), tracks a crisp mask of the shadow
through the clip. The refined mask is kept off the object and within reach.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..sam2_prompts import FramePrompts, ObjectPrompts, PromptSet
from ..sam2_session import TrackOptions, track_video
from .temporal import within_reach

OBJECT_ID = 1
EFFECTS_ID = 2
# How many frames are prompted: spread over the frames where effects were found.
KEYFRAMES = 3


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _box_and_inner_point(mask: np.ndarray) -> tuple[tuple[float, float, float, float], tuple[float, float]]:
    """Bounding box ``(x0, y0, x1, y1)`` and the point deepest inside ``mask`` (pixel centres)."""
    ys, xs = np.nonzero(mask)
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)), (x + 0.5, y + 0.5)


def keyframes(effects: np.ndarray, count: int = KEYFRAMES) -> list[int]:
    """Up to ``count`` frames with the largest effects, one from each equal part of the span."""
    areas = effects.reshape(effects.shape[0], -1).sum(1)
    found = np.nonzero(areas)[0]
    if found.size == 0:
        return []
    parts = np.array_split(found, min(count, found.size))
    return sorted({int(part[np.argmax(areas[part])]) for part in parts})


def effects_prompts(effects: np.ndarray, objects: np.ndarray, count: int = KEYFRAMES) -> PromptSet | None:
    """Prompts for SAM 2: object :data:`OBJECT_ID` and its effects :data:`EFFECTS_ID`.

    On each key frame the effects get their largest region's box and its innermost point as a
    positive click, plus the object's innermost point as a negative click; the object gets its
    box and innermost point. None when no effects were found.

    Args:
        effects, objects: bool ``[T, H, W]``.
    """
    frames_obj: dict[int, FramePrompts] = {}
    frames_fx: dict[int, FramePrompts] = {}
    for t in keyframes(effects, count):
        region = _largest_component(effects[t])
        box, inner = _box_and_inner_point(region)
        prompt = FramePrompts(positive=[inner], boxes=[box])
        if objects[t].any():
            obj_box, obj_inner = _box_and_inner_point(objects[t])
            prompt.negative.append(obj_inner)
            frames_obj[t] = FramePrompts(positive=[obj_inner], boxes=[obj_box])
        frames_fx[t] = prompt
    if not frames_fx:
        return None
    objects_list = [ObjectPrompts(EFFECTS_ID, frames_fx, "effects")]
    if frames_obj:
        objects_list.insert(0, ObjectPrompts(OBJECT_ID, frames_obj, "object"))
    h, w = effects.shape[1:]
    return PromptSet(objects_list, image_size=(w, h), frame_count=effects.shape[0])


def refine_effects(predictor: torch.nn.Module, images: torch.Tensor, effects: np.ndarray,
                   objects: np.ndarray, max_reach: int) -> np.ndarray:
    """SAM 2's mask of the effects, tracked through the clip, off the object and within reach.

    Args:
        predictor: a SAM 2 video predictor (inside ``SAM2Handle.acquire``).
        images: IMAGE ``[T, H, W, 3]`` 0..1. effects, objects: bool ``[T, H, W]``.
    Returns:
        bool ``[T, H, W]``; ``effects`` unchanged when there is nothing to prompt.
    """
    prompts = effects_prompts(effects, objects)
    if prompts is None:
        return effects
    result = track_video(predictor, images, prompts, TrackOptions())
    refined = result.object_mask(EFFECTS_ID).numpy() > 0.5
    reach = np.stack([within_reach(o, max_reach) for o in objects])
    return refined & reach
