"""Run the SAM 2 video predictor over an IMAGE tensor: lazy frames, both directions, bounded memory.

The official predictor reads a JPEG folder and keeps every frame at 1024x1024 float32 (12 MB a
frame) plus a memory entry for every tracked frame, so its memory grows with the clip. Here:

* :class:`LazyFrames` prepares one frame at a time from the IMAGE tensor when the predictor asks
  for it (``inference_state["images"][t]``); nothing is written to disk or pre-resized.
* Each pass (forward from the first prompt, backward towards frame 0) drops the per-frame memory
  the model can no longer attend to (older than its memory window), so a long clip needs the
  state of a short one with identical masks.
* Optionally a pass restarts its state every ``segment_frames`` frames, carrying each object's
  last mask into the next segment as a mask prompt (the user's prompts are re-added too).

The predictor object comes from ``sam2_loader``; this module never imports torchvision.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import _comfy
from .sam2_prompts import FramePrompts, ObjectPrompts, PromptSet

logger = logging.getLogger(__name__)

Direction = Literal["both", "forward", "backward"]
DIRECTIONS: tuple[str, ...] = ("both", "forward", "backward")
# parity: sam2/utils/misc.py:176-177 (load_video_frames: ImageNet mean and std)
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

# one run at a time per process: the model's RoPE tables and caches are mutated during inference
_model_lock = threading.Lock()


class LazyFrames:
    """The frames ``images[start:stop]`` as the predictor's ``[3, S, S]`` inputs, made on demand.

    Args:
        images: IMAGE ``[T, H, W, 3]`` float 0..1 on any device (never copied as a whole).
        image_size: the model's square input size S.
        device: where prepared frames go.
    """

    def __init__(self, images: torch.Tensor, image_size: int, device: torch.device,
                 start: int = 0, stop: int | None = None) -> None:
        self.images = images
        self.image_size = int(image_size)
        self.device = device
        self.start = start
        self.stop = images.shape[0] if stop is None else stop
        self.mean = torch.tensor(IMAGE_MEAN, device=device).view(3, 1, 1)
        self.std = torch.tensor(IMAGE_STD, device=device).view(3, 1, 1)
        self.prepared = 0  # how many frames were made (tests and the bench read it)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        _comfy.throw_if_interrupted()
        frame = self.images[self.start + index].to(self.device, torch.float32)  # [H, W, 3]
        frame = frame.permute(2, 0, 1).unsqueeze(0)  # [1, 3, H, W]
        # parity: sam2/utils/misc.py:94 resizes with PIL's default (bicubic, antialiased) after
        # JPEG encoding; we resize the exact frame with torch's antialiased bicubic.
        size = (self.image_size, self.image_size)
        frame = F.interpolate(frame, size=size, mode="bicubic", align_corners=False, antialias=True)
        frame = frame[0].clamp_(0.0, 1.0)  # [3, S, S]
        self.prepared += 1
        return (frame - self.mean) / self.std


def new_state(predictor: torch.nn.Module, frames: LazyFrames, height: int, width: int,
              offload_state_to_cpu: bool = False) -> dict:
    """An inference state like ``SAM2VideoPredictor.init_state`` makes, over lazy frames.

    parity: sam2/sam2_video_predictor.py:42-101 (init_state) with the same keys; the frame-0
    feature warm-up is skipped (features are computed when a frame is first used).
    """
    device = predictor.device
    return {
        "images": frames, "num_frames": len(frames), "offload_video_to_cpu": False,
        "offload_state_to_cpu": offload_state_to_cpu, "video_height": height, "video_width": width,
        "device": device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
        "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {},
        "constants": {}, "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(),
        "obj_ids": [], "output_dict_per_obj": {}, "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }


def memory_window(predictor: torch.nn.Module) -> int:
    """How many past frames a tracking step can read (mask memories and object pointers)."""
    # parity: sam2/modeling/sam2_base.py:539-563 (num_maskmem frames, strided) and 588-621
    # (max_obj_ptrs_in_encoder object pointers)
    stride = int(getattr(predictor, "memory_temporal_stride_for_eval", 1))
    return max(int(predictor.num_maskmem) * stride + 2, int(predictor.max_obj_ptrs_in_encoder) + 1)


def prune_memory(state: dict, frame: int, reverse: bool, window: int) -> int:
    """Drop tracked-frame memories more than ``window`` frames behind ``frame``; return the count."""
    dropped = 0
    for out in state["output_dict_per_obj"].values():
        non_cond = out["non_cond_frame_outputs"]
        stale = [t for t in non_cond if (t > frame + window if reverse else t < frame - window)]
        for t in stale:
            del non_cond[t]
        dropped += len(stale)
    return dropped


@dataclass
class TrackOptions:
    """How :func:`track_video` runs (the SAM 2 Propagate node's options)."""

    direction: Direction = "both"
    start_frame: int = 0
    max_frames: int = 0  # 0: to the end of the clip
    segment_frames: int = 0  # 0: one segment per pass (memory is still bounded by pruning)
    offload_state_to_cpu: bool = False
    fill_holes: int = 0  # fill background holes up to this many pixels (output resolution)


@dataclass
class TrackResult:
    """Per-object masks for every frame of the clip (frames outside the tracked range are empty)."""

    object_ids: list[int]
    masks: torch.Tensor  # [N, T, H, W] bool, CPU
    covered: torch.Tensor  # [N, T] bool: which (object, frame) masks were tracked
    frames_prepared: int = 0
    passes: list[str] = field(default_factory=list)

    def union(self) -> torch.Tensor:
        """``[T, H, W]`` float32: any object."""
        return self.masks.any(dim=0).float()

    def object_mask(self, object_id: int) -> torch.Tensor:
        """``[T, H, W]`` float32 for one object id."""
        return self.masks[self.object_ids.index(object_id)].float()


# ---------------------------------------------------------------------- prompting
def _add_frame_prompts(predictor, state: dict, t: int, obj_id: int, fp: FramePrompts,
                       frames: LazyFrames) -> None:
    """Give one object's prompts on local frame ``t`` to the predictor (several boxes: a mask)."""
    if len(fp.boxes) > 1:
        union = _multi_box_mask(predictor, frames, t, fp, state["video_height"], state["video_width"])
        predictor.add_new_mask(state, t, obj_id, union)
        return
    points = fp.positive + fp.negative
    labels = [1] * len(fp.positive) + [0] * len(fp.negative)
    predictor.add_new_points_or_box(
        state, frame_idx=t, obj_id=obj_id,
        points=np.asarray(points, np.float32).reshape(-1, 2) if points else None,
        labels=np.asarray(labels, np.int32) if points else None,
        box=np.asarray(fp.boxes[0], np.float32) if fp.boxes else None)


def split_boxes(fp: FramePrompts) -> list[FramePrompts]:
    """One prompt per box (SAM 2 takes one box per prompt), each with the clicks inside it and
    every negative click; positive clicks outside every box form one more part."""
    if len(fp.boxes) <= 1:
        return [fp]
    parts: list[FramePrompts] = []
    outside = list(fp.positive)
    for box in fp.boxes:
        inside = [p for p in fp.positive if box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]]
        outside = [p for p in outside if p not in inside]
        parts.append(FramePrompts(positive=inside, negative=list(fp.negative), boxes=[box]))
    if outside:
        parts.append(FramePrompts(positive=outside, negative=list(fp.negative)))
    return parts


def _multi_box_mask(predictor, frames: LazyFrames, t: int, fp: FramePrompts, h: int, w: int
                    ) -> torch.Tensor:
    """Segment each part of :func:`split_boxes` alone on this frame and unite the masks."""
    one = LazyFrames(frames.images, frames.image_size, frames.device, frames.start + t, frames.start + t + 1)
    masks = _single_frame_logits(predictor, one, h, w, split_boxes(fp))  # [P, H, W]
    return (masks > 0).any(dim=0)


def _single_frame_logits(predictor, frame: LazyFrames, h: int, w: int,
                         parts: Sequence[FramePrompts]) -> torch.Tensor:
    """Mask logits ``[P, H, W]`` for independent prompts (at most one box each) on a one-frame clip."""
    state = new_state(predictor, frame, h, w)
    logits = None
    for i, fp in enumerate(parts):
        _, _, logits = _add_and_return(predictor, state, i, fp, frame)
    assert logits is not None
    return logits[:, 0]


def _add_and_return(predictor, state, obj_id, fp, frame):
    points = fp.positive + fp.negative
    labels = [1] * len(fp.positive) + [0] * len(fp.negative)
    return predictor.add_new_points_or_box(
        state, frame_idx=0, obj_id=obj_id,
        points=np.asarray(points, np.float32).reshape(-1, 2) if points else None,
        labels=np.asarray(labels, np.int32) if points else None,
        box=np.asarray(fp.boxes[0], np.float32) if fp.boxes else None)


# ---------------------------------------------------------------------- post-processing
def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill background regions (8-connected) of at most ``max_area`` pixels in a bool ``[H, W]`` mask.

    parity: sam2/utils/misc.py:fill_holes_in_mask_scores does this on the 256x256 logits with a
    CUDA kernel; we do it on the output mask with OpenCV so it works everywhere.
    """
    if max_area <= 0 or not mask.any():
        return mask
    import cv2

    background = (~mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=8)
    small = np.zeros(count, dtype=bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_area
    return mask | small[labels]


# ---------------------------------------------------------------------- tracking
@dataclass
class _Pass:
    name: str
    frames: list[int]  # local frame indices in processing order
    reverse: bool
    limit: dict[int, int]  # object id -> last (forward: first) frame this pass may write

    def writes(self, obj_id: int, t: int) -> bool:
        limit = self.limit.get(obj_id)
        if limit is None:
            return False
        return t <= limit if self.reverse else t >= limit


def plan_passes(prompts: PromptSet, num_frames: int, direction: Direction) -> list[_Pass]:
    """The passes that cover every frame for every object.

    Forward runs from the earliest prompt to the end and writes an object's masks from its own
    first prompt on. Backward (``both``) runs from the latest first prompt to frame 0 and writes
    each object up to its first prompt; ``backward`` alone writes up to each object's last prompt.
    """
    first = {o.id: min(o.frames) for o in prompts.objects}
    last = {o.id: max(o.frames) for o in prompts.objects}
    passes: list[_Pass] = []
    if direction in ("both", "forward"):
        start = min(first.values())
        passes.append(_Pass("forward", list(range(start, num_frames)), False, first))
    if direction in ("both", "backward"):
        limit = first if direction == "both" else last
        start = max(limit.values())
        if direction == "backward" or start > 0:
            passes.append(_Pass("backward", list(range(start, -1, -1)), True, limit))
    return passes


def _segments(order: list[int], segment_frames: int) -> list[list[int]]:
    """Split a pass into segments that overlap by one frame (the frame whose mask is carried)."""
    if segment_frames < 2 or segment_frames >= len(order):
        return [order]
    out, pos = [], 0
    while True:
        out.append(order[pos:pos + segment_frames])
        if pos + segment_frames >= len(order):
            return out
        pos += segment_frames - 1


def _memory_dtype(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    # parity: sam2/sam2_video_predictor.py:_run_single_frame_inference stores mask memories in
    # bf16 and the official code only runs under CUDA bf16 autocast; in fp32 those memories
    # would reach fp32 linears (a dtype error), so they are cast back at the attention input.
    memory = kwargs.get("memory")
    weight_dtype = next(module.parameters()).dtype
    if isinstance(memory, torch.Tensor) and memory.dtype != weight_dtype:
        kwargs = dict(kwargs, memory=memory.to(weight_dtype))
    return args, kwargs


def install_hooks(predictor: torch.nn.Module) -> list:
    """Cancel checks before every network stage (a cancel lands within a frame) and the fp32
    memory cast; returns the handles to remove."""
    def check(*_args) -> None:
        _comfy.throw_if_interrupted()

    stages = ("image_encoder", "memory_attention", "memory_encoder", "sam_mask_decoder")
    hooks = [getattr(predictor, name).register_forward_pre_hook(check)
             for name in stages if hasattr(predictor, name)]
    if hasattr(predictor, "memory_attention"):
        hooks.append(predictor.memory_attention.register_forward_pre_hook(_memory_dtype, with_kwargs=True))
    return hooks


def _run_pass(predictor, frames: LazyFrames, prompts: PromptSet, plan: _Pass, opts: TrackOptions,
              out: np.ndarray, covered: np.ndarray, index_of: dict[int, int], offset: int,
              step: Callable[[], None]) -> None:
    """Run one pass segment by segment, writing bool masks into ``out`` ``[N, T, H, W]`` and
    marking them in ``covered`` ``[N, T]``."""
    height, width = out.shape[2], out.shape[3]
    window = memory_window(predictor)
    carried: dict[int, np.ndarray] = {}
    for k, segment in enumerate(_segments(plan.frames, opts.segment_frames)):
        state = new_state(predictor, frames, height, width, opts.offload_state_to_cpu)
        for obj in prompts.objects:
            for t, fp in sorted(obj.frames.items()):
                _add_frame_prompts(predictor, state, t, obj.id, fp, frames)
        for obj_id, mask in carried.items():
            if segment[0] not in prompts.objects[index_of[obj_id]].frames:
                predictor.add_new_mask(state, segment[0], obj_id, torch.from_numpy(mask))
        reverse = plan.reverse and segment[0] > 0  # the official skips reverse from frame 0
        last: dict[int, np.ndarray] = {}
        for t, obj_ids, logits in predictor.propagate_in_video(
                state, start_frame_idx=segment[0], max_frame_num_to_track=len(segment) - 1,
                reverse=reverse):
            masks = (logits[:, 0] > 0.0).cpu().numpy()  # [n, H, W]
            for i, obj_id in enumerate(obj_ids):
                mask = fill_small_holes(masks[i], opts.fill_holes)
                last[obj_id] = mask
                if plan.writes(obj_id, t) and not (k > 0 and t == segment[0]):
                    out[index_of[obj_id], offset + t] = mask
                    covered[index_of[obj_id], offset + t] = True
            if not (k > 0 and t == segment[0]):
                step()
            prune_memory(state, t, plan.reverse, window)
        carried = {o: m for o, m in last.items() if plan.writes(o, segment[-1])}
        del state


def _local_prompts(prompts: PromptSet, start: int) -> PromptSet:
    objects = [ObjectPrompts(o.id, {t - start: fp for t, fp in o.frames.items()}, o.name)
               for o in prompts.objects]
    return PromptSet(objects, prompts.image_size, None, prompts.version)


def tracked_range(num_frames: int, opts: TrackOptions) -> tuple[int, int]:
    """``(start, stop)`` of the frames to track."""
    start = min(max(opts.start_frame, 0), num_frames)
    stop = num_frames if opts.max_frames <= 0 else min(num_frames, start + opts.max_frames)
    return start, stop


def track_video(predictor: torch.nn.Module, images: torch.Tensor, prompts: PromptSet,
                opts: TrackOptions | None = None,
                progress: Callable[[int, int], None] | None = None) -> TrackResult:
    """Masks for every object on every frame of ``images``.

    Args:
        predictor: a ``SAM2VideoPredictor`` on its compute device (inside ``SAM2Handle.acquire``).
        images: IMAGE ``[T, H, W, 3]`` float 0..1.
        prompts: validated prompts in pixels of these frames, all inside the tracked range.
        progress: ``(done, total)`` after every frame.
    Returns:
        :class:`TrackResult` with ``masks`` ``[N, T, H, W]`` bool on the CPU.
    """
    opts = opts or TrackOptions()
    num_frames, height, width = images.shape[0], images.shape[1], images.shape[2]
    out = torch.zeros(len(prompts.objects), num_frames, height, width, dtype=torch.bool)
    covered = torch.zeros(len(prompts.objects), num_frames, dtype=torch.bool)
    prepared, passes = track_into(predictor, images, prompts, out.numpy(), covered.numpy(), opts, progress)
    return TrackResult([o.id for o in prompts.objects], out, covered, prepared, passes)


def track_into(predictor: torch.nn.Module, images, prompts: PromptSet, out, covered: np.ndarray,
               opts: TrackOptions | None = None, progress: Callable[[int, int], None] | None = None
               ) -> tuple[int, list[str]]:
    """:func:`track_video` writing into a caller's mask store instead of a clip-sized tensor.

    Args:
        images: anything with ``shape`` ``(T, H, W, 3)`` whose ``images[t]`` is a ``[H, W, 3]``
            float tensor in 0..1 (an IMAGE, or the streaming engine's lazily decoded frames).
        out: ``shape`` ``(N, T, H, W)`` and ``out[n, t] = bool [H, W]`` (an array, or a
            bit-packed store on disk); N follows ``prompts.objects``' order.
        covered: ``[N, T]`` bool, set where a mask was written.
    Returns:
        ``(frames prepared, pass names)``.
    """
    opts = opts or TrackOptions()
    num_frames = images.shape[0]
    start, stop = tracked_range(num_frames, opts)
    local = _local_prompts(prompts, start)
    frames = LazyFrames(images, predictor.image_size, predictor.device, start, stop)
    plans = plan_passes(local, stop - start, opts.direction)
    index_of = {o.id: i for i, o in enumerate(local.objects)}
    total = sum(len(p.frames) for p in plans)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    hooks = install_hooks(predictor)
    try:
        with _model_lock, torch.inference_mode():
            for plan in plans:
                _run_pass(predictor, frames, local, plan, opts, out, covered, index_of, start, step)
    finally:
        for hook in hooks:
            hook.remove()
    return frames.prepared, [p.name for p in plans]


def preview_single_frame(model_handle, frame_uint8: np.ndarray,
                         frame_prompts_for_all_objects: Sequence[FramePrompts] | Mapping[int, FramePrompts],
                         timeout_s: float = 10.0) -> np.ndarray:
    """Masks for one frame from each object's prompts (the editor's live preview).

    Args:
        model_handle: a ``SAM2Handle`` (e.g. ``sam2_loader.last_loaded_model()``).
        frame_uint8: ``[H, W, 3]`` uint8 RGB.
        frame_prompts_for_all_objects: one :class:`FramePrompts` per object (a list, or a dict
            keyed by object id, in order), in pixels of this frame.
    Returns:
        ``[N_obj, H, W]`` bool.
    Raises:
        TimeoutError: the model is busy with a propagation for longer than ``timeout_s``.
    """
    parts = list(frame_prompts_for_all_objects.values()
                 if isinstance(frame_prompts_for_all_objects, Mapping) else frame_prompts_for_all_objects)
    h, w = frame_uint8.shape[:2]
    if not parts:
        return np.zeros((0, h, w), dtype=bool)
    image = torch.from_numpy(np.ascontiguousarray(frame_uint8)).float().div_(255.0)[None]  # [1, H, W, 3]
    if not _model_lock.acquire(timeout=timeout_s):
        raise TimeoutError("SAM 2 is busy with another run")
    try:
        with model_handle.acquire() as predictor, torch.inference_mode():
            hooks = install_hooks(predictor)
            frame = LazyFrames(image, predictor.image_size, predictor.device)
            pieces = [split_boxes(fp) for fp in parts]
            try:
                logits = _single_frame_logits(predictor, frame, h, w, [p for ps in pieces for p in ps])
            finally:
                for hook in hooks:
                    hook.remove()
    finally:
        _model_lock.release()
    masks = (logits > 0).cpu().numpy()  # [P, H, W]
    owner = np.repeat(np.arange(len(parts)), [len(ps) for ps in pieces])
    return np.stack([masks[owner == i].any(axis=0) for i in range(len(parts))])
