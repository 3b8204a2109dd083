"""SAM 2 nodes: load a model, describe the objects with clicks and boxes, track them through the clip.

    SAM 2 Model Loader --model--> SAM 2 Propagate <--prompts-- SAM 2 Video Prompt
                                        ^ frames (IMAGE)
    SAM 2 Propagate --> mask (all objects), object_mask (one object), preview (IMAGE)

The math lives in ``nodes/ops/sam2_loader.py``, ``sam2_prompts.py`` and ``sam2_session.py``.
"""
from __future__ import annotations

import json
import logging

import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image
from .ops import sam2_loader
from .ops.editor_frames import write_run_frames
from .ops.file_identity import file_identity
from .ops.sam2_prompts import FramePrompts, ObjectPrompts, PromptError, PromptSet, parse_xy_points
from .ops.sam2_session import (DIRECTIONS, MAX_OBJECTS, ModelBusy, TooManyObjects, TrackOptions, TrackResult,
                                check_object_count, track_video, tracked_range)

logger = logging.getLogger(__name__)

_comfy.register_model_folder(sam2_loader.MODEL_FOLDER, sam2_loader.MODEL_EXTENSIONS)

LOADER = "SAM 2 Model Loader"
PROMPT = "SAM 2 Video Prompt"
PROPAGATE = "SAM 2 Propagate"
EXAMPLE_PROMPTS = json.dumps({"version": 1, "objects": [
    {"id": 1, "name": "object", "frames": {"0": {"positive": [[100, 100]]}}}]}, indent=1)
# overlay colours per object (RGB 0..1), cycled
PALETTE = ((1.0, 0.25, 0.25), (0.25, 0.6, 1.0), (0.3, 0.9, 0.3), (1.0, 0.8, 0.2),
           (0.85, 0.35, 1.0), (0.2, 0.9, 0.9))


class VanishSAM2ModelLoader:
    """Load a SAM 2 / SAM 2.1 checkpoint from ComfyUI/models/sam2."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "checkpoint": (_comfy.list_models(sam2_loader.MODEL_FOLDER), {
                "tooltip": "A SAM 2 or 2.1 checkpoint (.pt or .safetensors, tiny/small/base+/large) "
                           "in ComfyUI/models/sam2. The size and version are read from the file."}),
            "precision": (list(sam2_loader.PRECISIONS), {
                "default": "auto",
                "tooltip": "auto: bf16 on GPUs that have it, else fp16 on GPU, fp32 on CPU. "
                           "A precision the device lacks falls back (fp16 on CPU runs as fp32)."}),
            "device": (["auto", "cpu"], {
                "default": "auto", "tooltip": "auto: ComfyUI's compute device; cpu: always the CPU."}),
        }}

    RETURN_TYPES = ("VANISH_SAM2_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The SAM 2 video predictor, managed by ComfyUI (unloaded when memory is needed).",)
    FUNCTION = "load"
    CATEGORY = "Vanish/segmentation"
    DESCRIPTION = ("Loads SAM 2 / SAM 2.1 (tiny, small, base+, large) from ComfyUI/models/sam2, "
                   "choosing the config from the checkpoint itself. Reused across runs while the "
                   "file and settings are unchanged.")

    @classmethod
    def IS_CHANGED(cls, checkpoint: str, precision: str = "auto", device: str = "auto"):
        """Re-run when the file is replaced under the same name (size, time or content sample change)."""
        try:
            path = _checkpoint_path(checkpoint)
        except VanishError as exc:
            return f"invalid:{exc}"  # load() raises the same error
        identity = ":".join(map(str, file_identity(path)[1:])) if path is not None else "missing"
        return f"{path}:{identity}:{precision}:{device}"

    def load(self, checkpoint: str, precision: str = "auto", device: str = "auto"):
        path = _checkpoint_path(checkpoint)
        if path is None:
            raise VanishError(LOADER, "checkpoint", *sam2_loader.missing_checkpoint_message(checkpoint))
        target = torch.device("cpu") if device == "cpu" else _comfy.torch_device()
        try:
            handle = sam2_loader.load_sam2(path, precision, target)  # type: ignore[arg-type]
        except sam2_loader.CheckpointError as exc:
            raise VanishError(LOADER, "checkpoint", exc.problem, exc.fix) from exc
        return (handle,)


def _checkpoint_path(checkpoint: str):
    """The checkpoint's full path (None when missing); a name leaving the folder is an error."""
    try:
        return _comfy.model_path(sam2_loader.MODEL_FOLDER, checkpoint) if checkpoint else None
    except ValueError as exc:
        raise VanishError(LOADER, "checkpoint", f"names {checkpoint!r}, which points outside the model folders.",
                          "pick a file listed in models/sam2 ('..' and absolute paths are refused).") from exc


class VanishSAM2VideoPrompt:
    """Positive/negative clicks and boxes per object, on any frames, as one JSON widget."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "prompts": ("STRING", {
                "multiline": True, "default": EXAMPLE_PROMPTS,
                "tooltip": 'JSON: {"version": 1, "image_size": [W, H] (optional), "objects": [{"id": 1, '
                           '"frames": {"<frame>": {"positive": [[x, y]], "negative": [[x, y]], '
                           '"boxes": [[x0, y0, x1, y1]]}}}]}. Pixels of the original frames.'}),
        }, "optional": {
            "frames": ("IMAGE", {"tooltip": "The clip, to check frame numbers and that points lie "
                                            "inside the frames (optional)."}),
            "points_positive": ("STRING", {
                "forceInput": True, "tooltip": 'Positive points from the KJNodes Points Editor or '
                                               'SAM 3 nodes: [{"x": 10, "y": 20}, ...].'}),
            "points_negative": ("STRING", {
                "forceInput": True, "tooltip": "Negative points in the same format."}),
            "frame_index": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                                    "tooltip": "The frame the connected points were clicked on."}),
            "object_id": ("INT", {"default": 1, "min": 0, "max": 10_000,
                                  "tooltip": "The object the connected points belong to."}),
        }, "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("VANISH_SAM2_PROMPTS",)
    RETURN_NAMES = ("prompts",)
    OUTPUT_TOOLTIPS = ("The validated prompts for SAM 2 Propagate.",)
    FUNCTION = "build"
    CATEGORY = "Vanish/segmentation"
    DESCRIPTION = ("Prompts for one or more objects: positive and negative clicks and boxes on any "
                   "frames (add clicks where tracking drifted). Also takes KJNodes Points Editor points.")

    def build(self, prompts: str, frames=None, points_positive: str | None = None,
              points_negative: str | None = None, frame_index: int = 0, object_id: int = 1,
              unique_id: str | None = None):
        try:
            prompt_set = merge_xy_points(_parse_or_empty(prompts, points_positive), points_positive,
                                         points_negative, frame_index, object_id)
            if frames is not None:
                images = check_image(frames, PROMPT, "frames")
                count, size = images.shape[0], (images.shape[2], images.shape[1])
                prompt_set.validate(count, size)
            else:
                prompt_set.validate()
        except PromptError as exc:
            raise VanishError(PROMPT, "prompts", exc.problem, exc.fix) from exc
        if frames is not None and unique_id is not None:
            share_run_frames(images, str(unique_id))
        return (prompt_set,)


def share_run_frames(images: torch.Tensor, node_id: str) -> None:
    """Give the canvas editor this run's frames (it shows them when no loader feeds the node)."""
    try:
        refs = write_run_frames(images, _comfy.temp_directory(), node_id)
    except OSError as exc:  # the editor is a convenience: never fail the run for it
        logger.warning("prompt editor frames not written: %s", exc)
        return
    _comfy.send_to_frontend("vanish.run_frames", {"node": node_id, **refs})


def _parse_or_empty(text: str, points_positive: str | None) -> PromptSet:
    """The widget's prompts; the untouched example is ignored when points are connected."""
    if points_positive and (not text.strip() or text.strip() == EXAMPLE_PROMPTS.strip()):
        return PromptSet()
    return PromptSet.from_json(text)


def merge_xy_points(prompt_set: PromptSet, positive: str | None, negative: str | None,
                    frame_index: int, object_id: int) -> PromptSet:
    """Add KJNodes/SAM 3-style points to object ``object_id`` on ``frame_index``."""
    pos = parse_xy_points(positive, "points_positive")
    neg = parse_xy_points(negative, "points_negative")
    if not pos and not neg:
        return prompt_set
    obj = next((o for o in prompt_set.objects if o.id == object_id), None)
    if obj is None:
        obj = ObjectPrompts(object_id)
        prompt_set.objects.append(obj)
    fp = obj.frames.setdefault(frame_index, FramePrompts())
    fp.positive.extend(pos)
    fp.negative.extend(neg)
    return prompt_set


class VanishSAM2Propagate:
    """Track the prompted objects through every frame: masks at the frames' resolution."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("VANISH_SAM2_MODEL", {"tooltip": "From SAM 2 Model Loader."}),
            "frames": ("IMAGE", {"tooltip": "The clip [frames, height, width, 3]."}),
            "prompts": ("VANISH_SAM2_PROMPTS", {"tooltip": "From SAM 2 Video Prompt."}),
            "direction": (list(DIRECTIONS), {
                "default": "both", "tooltip": "both: forward from the first prompt and backward to "
                "frame 0, so every frame gets a mask; forward/backward: one way only."}),
        }, "optional": {
            "start_frame": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                                    "tooltip": "First frame to track; earlier frames get empty masks."}),
            "max_frames": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                                   "tooltip": "How many frames to track from start_frame (0: all)."}),
            "segment_frames": ("INT", {
                "default": 0, "min": 0, "max": 1_000_000,
                "tooltip": "0: one session per direction (memory already bounded). N >= 2: restart "
                           "SAM 2's state every N frames, carrying each object's last mask."}),
            "offload_state_to_cpu": ("BOOLEAN", {
                "default": False, "tooltip": "Keep SAM 2's tracking memory in RAM instead of VRAM "
                                             "(a little slower, less VRAM)."}),
            "fill_holes": ("INT", {"default": 0, "min": 0, "max": 100_000,
                                   "tooltip": "Fill holes in each mask up to this many pixels (0: off)."}),
            "object_id": ("INT", {"default": -1, "min": -1, "max": 10_000,
                                  "tooltip": "Which object the object_mask output shows (-1: the first)."}),
        }}

    RETURN_TYPES = ("MASK", "MASK", "IMAGE")
    RETURN_NAMES = ("mask", "object_mask", "preview")
    OUTPUT_TOOLTIPS = ("All objects united, one mask per frame [T, H, W] (what to remove).",
                       "The masks of the object chosen by object_id alone.",
                       "The frames with each object's mask tinted in its own colour.")
    FUNCTION = "propagate"
    CATEGORY = "Vanish/segmentation"
    DESCRIPTION = ("Runs SAM 2 over the whole clip from the prompted frames, forward and backward, "
                   "without a temporary JPEG folder and in bounded memory for long clips.")

    def propagate(self, model, frames, prompts, direction: str = "both", start_frame: int = 0,
                  max_frames: int = 0, segment_frames: int = 0, offload_state_to_cpu: bool = False,
                  fill_holes: int = 0, object_id: int = -1):
        if not isinstance(model, sam2_loader.SAM2Handle):
            raise VanishError(PROPAGATE, "model", f"must come from SAM 2 Model Loader, got "
                              f"{type(model).__name__}.", "connect a SAM 2 Model Loader node.")
        images = check_image(frames, PROPAGATE, "frames")
        opts = TrackOptions(direction, start_frame, max_frames, segment_frames, offload_state_to_cpu,
                            fill_holes)  # type: ignore[arg-type]
        prompt_set = check_propagate_prompts(prompts, images, opts)
        chosen = prompt_set.objects[0].id if object_id < 0 else object_id
        if chosen not in [o.id for o in prompt_set.objects]:
            raise VanishError(PROPAGATE, "object_id", f"is {object_id} but the prompts have objects "
                              f"{[o.id for o in prompt_set.objects]}.", "pick one of those ids, or -1.")
        report = _comfy.progress_callback(images.shape[0])
        try:
            with model.acquire() as predictor:
                result = track_video(predictor, images, prompt_set, opts, report)
        except ModelBusy as exc:
            raise VanishError(PROPAGATE, None, f"{exc} (another run, or a live preview that did not stop).",
                              "close the prompt editor's live preview, or wait for the other run, and queue "
                              "again.") from exc
        return (result.union(), result.object_mask(chosen), overlay_preview(images, result))


def check_propagate_prompts(prompts: object, images: torch.Tensor, opts: TrackOptions) -> PromptSet:
    """Scale the prompts to the frames and check them against the frames and tracked range."""
    if not isinstance(prompts, PromptSet):
        raise VanishError(PROPAGATE, "prompts", f"must come from SAM 2 Video Prompt, got "
                          f"{type(prompts).__name__}.", "connect a SAM 2 Video Prompt node.")
    count, height, width = images.shape[0], images.shape[1], images.shape[2]
    try:
        scaled = prompts.scaled_to(width, height)
        scaled.validate(count, (width, height))
    except PromptError as exc:
        raise VanishError(PROPAGATE, "prompts", exc.problem, exc.fix) from exc
    start, stop = tracked_range(count, opts)
    if start >= stop:
        raise VanishError(PROPAGATE, "start_frame", f"is {opts.start_frame} but the clip has {count} "
                          "frames.", f"set start_frame below {count}.")
    try:
        check_object_count(len(scaled.objects))
    except TooManyObjects as exc:
        raise VanishError(PROPAGATE, "prompts", f"has {exc.count} objects; at most {MAX_OBJECTS} are tracked in one "
                          f"run (each object costs about one single-object run).",
                          f"remove objects, or split them over several SAM 2 Propagate nodes of at most "
                          f"{MAX_OBJECTS} objects each and add their masks.") from exc
    outside = sorted(t for t in scaled.prompted_frames() if not start <= t < stop)
    if outside:
        raise VanishError(PROPAGATE, "prompts", f"include frame(s) {outside[:5]} outside the tracked "
                          f"frames {start} to {stop - 1}.",
                          "widen start_frame/max_frames, or move the prompts.")
    return scaled


def overlay_preview(images: torch.Tensor, result: TrackResult, alpha: float = 0.5) -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]`` with each object's mask tinted in its palette colour (CPU float32)."""
    out = images.detach().to("cpu", torch.float32).clone()
    for i in range(result.masks.shape[0]):
        colour = torch.tensor(PALETTE[i % len(PALETTE)])
        for t in range(out.shape[0]):  # frame by frame: no [T, H, W, 3] temporaries
            m = result.masks[i, t]
            if bool(m.any()):
                out[t][m] = out[t][m] * (1 - alpha) + colour * alpha
    return out


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "VanishSAM2ModelLoader": VanishSAM2ModelLoader,
    "VanishSAM2VideoPrompt": VanishSAM2VideoPrompt,
    "VanishSAM2Propagate": VanishSAM2Propagate,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "VanishSAM2ModelLoader": LOADER,
    "VanishSAM2VideoPrompt": PROMPT,
    "VanishSAM2Propagate": PROPAGATE,
}
