"""Remove Object (streaming): the whole removal, file to file, for clips of any length.

The ComfyUI front door of the streaming engine (``nodes/engine``): a clip from the input folder,
a path or core's ``VIDEO`` goes in, a video file comes out in the output folder (Save Video's
naming and never-overwrite rule). Frames are decoded window by window and never held as IMAGE
tensors, so memory depends on the window, not on the clip. The node only translates ComfyUI
values into one engine call and back.
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

import torch

from . import _comfy
from ._errors import VanishError
from .inpainting import MODEL_TYPE, InpaintModel
from .ops import video_decode as vd
from .ops import video_encode as ve
from .ops.inpaint_runner import RunSettings
from .ops.sam2_loader import SAM2Handle
from .ops.sam2_prompts import PromptSet
from .video_io import _new_target, preview_entries, resolve_source, workflow_metadata

logger = logging.getLogger(__name__)

NODE = "Remove Object (streaming)"
#: Engine input names -> this node's inputs (for re-labelled engine errors).
ENGINE_INPUTS = {"source": "video", "masks": "mask_path", "prompts": "prompts", "output": "filename_prefix",
                 "sam2": "sam2_model", "inpaint_models": "inpaint_model"}


# --------------------------------------------------------------------------- inputs
def core_video_path(video: object) -> tuple[Path, bool]:
    """A file for core's ``VIDEO`` value: ``(path, is_temporary)``.

    Core's VideoInput exposes ``get_stream_source()`` (a path, or a BytesIO for uploads held in
    memory) and ``get_active_trim_window()`` (``(start, duration)`` seconds, ``(0, 0)`` = whole).
    An untrimmed file is read in place; anything else is written once to the temp folder
    (``save_to`` applies the trim), chunk by chunk, never as decoded frames.
    """
    if not hasattr(video, "get_stream_source"):
        raise VanishError(NODE, "core_video", f"is a {type(video).__name__}, not a ComfyUI VIDEO.",
                          "connect core's Load Video (or another node with a VIDEO output).")
    trim = getattr(video, "get_active_trim_window", lambda: (0.0, 0.0))()
    stream = video.get_stream_source()
    if isinstance(stream, (str, os.PathLike)) and not any(trim):
        return Path(stream), False
    folder = _comfy.temp_directory()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"vanish_video_{uuid.uuid4().hex[:12]}.mp4"
    if isinstance(stream, io.IOBase) and not any(trim):
        with open(target, "xb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
    else:
        video.save_to(str(target))
    return target, True


def open_inputs(engine, video: str, path: str, core_video, mask_path: str, mask):
    """``(source, mask source or None, temporary file or None)`` from the node's inputs."""
    temporary = None
    if core_video is not None:
        clip, is_temp = core_video_path(core_video)
        temporary = clip if is_temp else None
    else:
        clip = resolve_source(video, path)
        if clip is None:
            raise VanishError(NODE, "video", "names no file.", "choose or upload a video, type a "
                              "path, or connect core's Load Video to 'core_video'.")
    source = engine.open_source(clip)
    masks = None
    if (mask_path or "").strip():
        masks = engine.open_mask_source(resolve_source("", mask_path), like=source)
    elif mask is not None:
        masks = engine.open_mask_source(mask.detach().to("cpu", torch.float32).numpy(), like=source)
    return source, masks, temporary


def check_models(prompts, sam2_model, inpaint_model, has_mask: bool) -> None:
    if not isinstance(inpaint_model, InpaintModel):
        raise VanishError(NODE, "inpaint_model", f"must come from ProPainter Model Loader, got "
                          f"{type(inpaint_model).__name__}.", "connect a ProPainter Model Loader.")
    if (prompts is None) == (not has_mask):
        raise VanishError(NODE, "prompts", "and a mask are both connected." if has_mask else
                          "is not connected, and there is no mask either.",
                          "connect SAM 2 Video Prompt (with a SAM 2 Model Loader) OR give a mask_path/mask.")
    if prompts is not None and not isinstance(prompts, PromptSet):
        raise VanishError(NODE, "prompts", f"must come from SAM 2 Video Prompt, got {type(prompts).__name__}.",
                          "connect a SAM 2 Video Prompt node.")
    if prompts is not None and not isinstance(sam2_model, SAM2Handle):
        raise VanishError(NODE, "sam2_model", "is needed to track the prompted object.",
                          "connect a SAM 2 Model Loader.")


def removal_settings(engine, inpaint_model: InpaintModel, options: dict, metadata: dict | None = None):
    """The engine's settings from the widgets (names as on Mask Dilate & Blur / ProPainter Inpaint)."""
    mask = engine.MaskOptions(grow=options["grow"], feather=options["feather"],
                              temporal_sigma=options["temporal_sigma"])
    inpaint = RunSettings(backend=inpaint_model.backend, crop=options["crop"], size_mode=options["size_mode"],
                          scale=options["scale"], long_side=options["long_side"],
                          segment_length=options["segment_length"],
                          half=inpaint_model.dtype != torch.float32, cpu_bf16=inpaint_model.cpu_bf16,
                          flow_fill_second_draw=inpaint_model.flow_fill_second_draw)
    output = engine.OutputOptions(format=options["format"], crf=options["crf"], metadata=metadata or {})
    return engine.RemovalSettings(inpaint=inpaint, mask=mask, output=output)


def run_engine(engine, source, target: Path, settings, prompts, masks, sam2_model, inpaint_model,
               if_taken: Callable[[Path], Path] | None = None):
    """One engine run with ComfyUI's progress bar, cancel and model management (``if_taken``: see
    ``engine.run_removal``)."""
    prompts = prompts.scaled_to(source.width, source.height) if prompts is not None else None
    try:
        networks = inpaint_model.networks() if inpaint_model.backend == "propainter" else None
        return engine.run_removal(source, target, settings, prompts=prompts, masks=masks, sam2=sam2_model,
                                  inpaint_models=networks, device=inpaint_model.device,
                                  progress=_comfy.progress_callback(100), should_cancel=_comfy.is_interrupted,
                                  if_taken=if_taken)
    except engine.Cancelled:
        _comfy.throw_if_interrupted()  # ComfyUI's own interrupt exception
        raise
    finally:
        inpaint_model.release()


def relabel(error: VanishError) -> VanishError:
    """An engine (or Save Video naming) error, as this node's error on the input it concerns."""
    if error.node == NODE:
        return error
    return VanishError(NODE, ENGINE_INPUTS.get(error.input_name or "", error.input_name), error.problem,
                       error.fix)


# --------------------------------------------------------------------------- the node
class VanishRemoveObjectStreaming:
    """Prompts (or a mask) + models in, a finished video file out; no clip-sized tensors."""

    DISPLAY_NAME = NODE
    CATEGORY = "Vanish"
    FUNCTION = "remove"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "IMAGE")
    RETURN_NAMES = ("path", "preview")
    OUTPUT_TOOLTIPS = ("Full path of the saved video in the output folder.",
                       "A few frames of the result, downscaled (long side <= 256), for a quick look.")
    DESCRIPTION = ("Removes the object from a whole clip of any length, file to file: SAM 2 tracks it "
                   "(or a mask video/image says where it is), the mask is grown and feathered, "
                   "ProPainter (or flow_fill) fills it segment by segment, and the result is encoded "
                   "into the output folder with the clip's sound. Frames stream through in windows, "
                   "so memory does not grow with the clip; pixels outside the mask stay untouched.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        files = _comfy.list_input_files(vd.VIDEO_EXTENSIONS + vd.IMAGE_EXTENSIONS)

        def number(kind: str, default, low, high, tip: str, step=None) -> tuple[str, dict]:
            return (kind, {"default": default, "min": low, "max": high, "tooltip": tip,
                           **({"step": step} if step is not None else {})})

        return {"required": {
            "video": (files, {"video_upload": True, "tooltip": "The clip in ComfyUI's input folder "
                              "(the upload button adds one). Ignored when 'path' or 'core_video' is set."}),
            "inpaint_model": (MODEL_TYPE, {"tooltip": "From ProPainter Model Loader (propainter or "
                                                      "the weights-free flow_fill backend)."}),
            "filename_prefix": ("STRING", {"default": "vanish/removed", "tooltip":
                                "Name (and subfolders) inside the output folder; a counter is added and "
                                "nothing existing is overwritten."}),
            "format": (list(ve.FORMATS), {"default": "h264-mp4", "tooltip":
                       "Output format, as in Save Video (h264-mp4 plays everywhere; ffv1-mkv is lossless)."}),
            "crf": number("INT", 19, 0, 63, "Quality for h264/h265 (0-51) and vp9 (0-63): lower is better."),
            "grow": number("INT", 8, -512, 512, "Pixels to grow the mask by (Mask Dilate & Blur's grow)."),
            "feather": number("FLOAT", 2.0, 0.0, 256.0, "Edge softness, Gaussian sigma in pixels.", 0.5),
            "temporal_sigma": number("FLOAT", 0.0, 0.0, 30.0, "Smooth the mask over time, sigma in frames "
                                     "(0 = off).", 0.25),
            "crop": (["auto", "off"], {"default": "auto", "tooltip": "auto: fill only the region around "
                                       "the object in each segment when it is small; off: whole frames."}),
            "size_mode": (["scale", "long side"], {"default": "scale", "tooltip":
                          "How the processing size is set: a scale of the (cropped) frames, or a long side."}),
            "scale": number("FLOAT", 1.0, 0.05, 4.0, "Processing scale when size_mode is 'scale'.", 0.05),
            "long_side": number("INT", 960, 16, 8192, "Processing long side in pixels for 'long side'."),
            "segment_length": number("INT", 0, 0, 100000, "Frames per inpainting segment; 0 = the backend's "
                                     "default."),
        }, "optional": {
            "path": ("STRING", {"default": "", "tooltip": "A video file or image folder (absolute, or "
                                "relative to the input folder). Overrides 'video'."}),
            "core_video": ("VIDEO", {"tooltip": "A VIDEO from ComfyUI's core Load Video; overrides "
                                                "'video' and 'path'."}),
            "prompts": ("VANISH_SAM2_PROMPTS", {"tooltip": "From SAM 2 Video Prompt: what to remove "
                                                           "(needs sam2_model)."}),
            "sam2_model": ("VANISH_SAM2_MODEL", {"tooltip": "From SAM 2 Model Loader (with prompts)."}),
            "mask_path": ("STRING", {"default": "", "tooltip": "Instead of prompts: a mask video, image "
                                     "folder or ONE image (white = remove), resized to the clip."}),
            "mask": ("MASK", {"tooltip": "Instead of prompts: one mask for every frame, or one per frame."}),
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def remove(self, video: str, inpaint_model, filename_prefix: str, format: str, crf: int, path: str = "",
               core_video=None, prompts=None, sam2_model=None, mask_path: str = "", mask=None,
               prompt=None, extra_pnginfo=None, **options) -> dict:
        from . import engine

        options.update(format=format, crf=crf)
        check_models(prompts, sam2_model, inpaint_model, bool((mask_path or "").strip()) or mask is not None)
        temporary = None
        try:
            source, masks, temporary = open_inputs(engine, video, path, core_video, mask_path, mask)
            # if the name is taken while the job runs (another save meanwhile): the next free counter
            target, subfolder, next_name = _new_target(filename_prefix, (source.width, source.height),
                                                       ve.FORMATS[format].extension, format == "png-sequence")
            settings = removal_settings(engine, inpaint_model, options, workflow_metadata(prompt, extra_pnginfo))
            result = run_engine(engine, source, target, settings, prompts, masks, sam2_model, inpaint_model,
                                if_taken=next_name)
        except VanishError as error:  # the engine's errors, and Save Video's naming checks
            raise relabel(error) from error
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        preview = torch.from_numpy(result.preview).float() / 255.0  # [k, h, w, 3]
        return {"ui": preview_entries(result.output, subfolder, format), "result": (str(result.output), preview)}


NODE_CLASS_MAPPINGS: dict[str, type] = {"VanishRemoveObjectStreaming": VanishRemoveObjectStreaming}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {"VanishRemoveObjectStreaming": NODE}
