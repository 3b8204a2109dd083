"""Inpaint stage: load ProPainter (or pick the weights-free backend) and fill the masked object.

The math lives in :mod:`.ops.inpaint_runner` (size, crop, memory, retries) and
:mod:`.ops.flow_fill` (the weights-free backend); the networks in ``propainter_core``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, match_mask_to_frames
from .ops import flow_fill, inpaint_runner
from .ops.file_identity import file_identity
from .ops.inpaint_runner import Host, RunSettings

logger = logging.getLogger(__name__)

MODEL_TYPE = "VANISH_INPAINT_MODEL"
CROP_TYPE = "VANISH_CROP"
MODEL_FOLDER = "propainter"
MODEL_EXTENSIONS = (".pth", ".safetensors")
#: network -> the official file name (sczhou/ProPainter release v0.1.0).
OFFICIAL_FILES = {"raft": "raft-things.pth", "flow_completion": "recurrent_flow_completion.pth",
                  "generator": "ProPainter.pth"}
RELEASE_URL = "https://github.com/sczhou/ProPainter/releases/tag/v0.1.0"
#: The backend choice that fills once instead of averaging two fills (``FlowFillSettings.second_draw``).
ONE_FILL = "flow_fill fast (no weights, one fill)"
BACKENDS = {"propainter": "propainter", "flow_fill (no weights)": "flow_fill", ONE_FILL: "flow_fill"}
#: The file slots' one choice that is not a file: always listed, so a graph that runs the
#: weights-free backend validates with an empty models/propainter. It does not look like a model
#: file name (.pth/.safetensors), so the frontend's missing-model scan never flags it.
NO_FILE = "flow_fill (no weights)"
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

_comfy.register_model_folder(MODEL_FOLDER, MODEL_EXTENSIONS)


class _Networks(nn.Module):
    """The three ProPainter networks as one module, so ComfyUI manages them together."""

    def __init__(self, raft: nn.Module, flow_completion: nn.Module, generator: nn.Module) -> None:
        super().__init__()
        self.raft, self.flow_completion, self.generator = raft, flow_completion, generator


@dataclass
class InpaintModel:
    """The ``VANISH_INPAINT_MODEL`` value: a backend, and for ProPainter its managed networks."""

    backend: str
    device: torch.device
    dtype: torch.dtype = torch.float32
    managed: _comfy.ManagedModel | None = None
    files: dict[str, str] = field(default_factory=dict)
    #: bf16 on the CPU: fp32 weights, convolutions and matrix products under bfloat16 autocast
    cpu_bf16: bool = False
    #: flow_fill: the mean of two fills from flows measured on two grids (False: one, half the time)
    flow_fill_second_draw: bool = True

    def networks(self):
        """``propainter_core.ProPainterModels`` on the compute device (loads it there)."""
        from ..propainter_core import ProPainterModels

        bundle = self.managed.load()
        return ProPainterModels(raft=bundle.raft, flow_completion=bundle.flow_completion,
                                generator=bundle.generator, device=self.device, dtype=self.dtype)

    def release(self) -> None:
        if self.managed is not None:
            self.managed.offload()


_CACHE: dict[tuple, InpaintModel] = {}


def resolve_model_files(names: dict[str, str], node: str) -> dict[str, Path]:
    """Full paths of the three checkpoint files; one error naming every missing file."""
    try:
        found = {net: _comfy.model_path(MODEL_FOLDER, name) for net, name in names.items()}
    except ValueError as error:
        raise VanishError(node, None, f"the model file {error}.", f"pick a file listed in models/{MODEL_FOLDER} (subfolders are "
                          "fine; '..' and absolute paths are not).") from error
    missing = [f"'{names[net]}' ({net.replace('_', ' ')}, official name {OFFICIAL_FILES[net]})"
               for net, path in found.items() if path is None]
    if missing:
        folders = ", ".join(str(p) for p in _comfy.model_folders(MODEL_FOLDER))
        raise VanishError(node, None, f"model file(s) not found: {'; '.join(missing)}. Searched: {folders}.",
                          f"download raft-things.pth, recurrent_flow_completion.pth and ProPainter.pth from the "
                          f"official release {RELEASE_URL} into ComfyUI/models/{MODEL_FOLDER}/ (or a folder "
                          f"listed for '{MODEL_FOLDER}' in extra_model_paths.yaml) and refresh; or choose the "
                          f"backend 'flow_fill (no weights)'.")
    return found  # type: ignore[return-value]


def load_inpaint_model(backend: str, names: dict[str, str], precision: str, device_choice: str,
                       node: str, one_fill: bool = False) -> InpaintModel:
    """Build (or reuse from the cache) the model handle the inpaint node runs (``one_fill``: flow_fill
    without its second draw)."""
    device = _comfy.torch_device() if device_choice == "auto" else torch.device("cpu")
    if backend == "flow_fill":
        return InpaintModel("flow_fill", torch.device("cpu"), flow_fill_second_draw=not one_fill)
    dtype = PRECISIONS[precision]
    cpu_bf16 = precision == "bf16" and device.type == "cpu"  # the core warns where the CPU lacks bf16
    if dtype != torch.float32 and device.type != "cuda":
        if not cpu_bf16:
            logger.warning("%s: %s needs a CUDA GPU; running in fp32 on %s", node, precision, device)
        dtype = torch.float32
    paths = resolve_model_files(names, node)
    key = (tuple(file_identity(p) for p in paths.values()), str(device), str(dtype), cpu_bf16)
    if key not in _CACHE:
        from ..propainter_core import load_models
        from ..propainter_core.checkpoints import CheckpointError

        try:
            models = load_models(raft=paths["raft"], flow_completion=paths["flow_completion"],
                                 generator=paths["generator"], device="cpu")
        except CheckpointError as error:
            slots = ", ".join(f"{net}: {name}" for net, name in OFFICIAL_FILES.items())
            raise VanishError(node, None, f"a model file could not be used: {error}",
                              f"use the official files from {RELEASE_URL}, each in its own slot ({slots}).") from error
        models.flow_completion.to(dtype)  # RAFT stays fp32 (parity: inference_propainter.py:311)
        models.generator.to(dtype)
        bundle = _Networks(models.raft, models.flow_completion, models.generator)
        _CACHE.clear()  # one set of networks at a time; ComfyUI holds the rest of the memory
        _CACHE[key] = InpaintModel("propainter", device, dtype, _comfy.ManagedModel(bundle, device),
                                   {k: str(v) for k, v in paths.items()}, cpu_bf16)
    return _CACHE[key]


class VanishProPainterModelLoader:
    """Load the three ProPainter networks, or select the weights-free flow_fill backend."""

    DISPLAY_NAME = "ProPainter Model Loader"
    CATEGORY = "Vanish/inpaint"
    FUNCTION = "load"
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The inpainting backend for ProPainter Inpaint (networks stay cached between runs).",)
    DESCRIPTION = (
        "Loads ProPainter's three official files (raft-things.pth, recurrent_flow_completion.pth, "
        f"ProPainter.pth from {RELEASE_URL}) from ComfyUI/models/propainter, or picks the weights-free "
        "backend (OpenCV flow, smooth flow completion, propagation; CPU, no download; 'fast' fills once "
        "instead of averaging two fills, in half the time). fp16/bf16 run "
        "flow completion and the generator in half precision on CUDA (RAFT stays fp32). On the CPU, "
        "bf16 runs the networks under bfloat16 autocast where the CPU has native bfloat16 (about 1.85x "
        "faster; inside the hole a few values move by up to 5 levels); fp16 falls back to fp32 with a warning."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        # Only files that exist: the frontend reports a model file as missing (and offers the
        # download the workflow names) exactly when the widget's value is not among the choices.
        files = sorted(set(_comfy.list_models(MODEL_FOLDER)))

        def choices(net: str) -> tuple[list[str], dict]:
            return (files + [NO_FILE], {
                "default": OFFICIAL_FILES[net],
                "tooltip": f"The {net.replace('_', ' ')} checkpoint in models/{MODEL_FOLDER} "
                           f"(official: {OFFICIAL_FILES[net]}); '{NO_FILE}' with the flow_fill backend."})

        return {"required": {
            "backend": (list(BACKENDS), {"default": "propainter",
                        "tooltip": "propainter: the official networks (needs the three files). "
                                   "flow_fill (no weights): classical flow-guided propagation on the CPU, the "
                                   "mean of two fills. flow_fill fast: one fill in half the time (0.3-0.4 dB "
                                   "lower on the weights-free bench)."}),
            "raft": choices("raft"),
            "flow_completion": choices("flow_completion"),
            "generator": choices("generator"),
            "precision": (list(PRECISIONS), {"default": "fp32",
                          "tooltip": "fp16/bf16 halve the memory of flow completion and the generator on CUDA. "
                                     "On the CPU, bf16 is about 1.85x faster where the CPU has native bfloat16 "
                                     "(the fill differs from fp32 by up to a few levels); fp32 is the official "
                                     "default."}),
            "device": (["auto", "cpu"], {"default": "auto",
                       "tooltip": "auto: ComfyUI's compute device (GPU when there is one); cpu: force the CPU."}),
        }}

    def load(self, backend: str, raft: str, flow_completion: str, generator: str, precision: str,
             device: str) -> tuple[InpaintModel]:
        node = self.DISPLAY_NAME
        if backend not in BACKENDS:
            raise VanishError(node, "backend", f"is {backend!r}; expected one of {list(BACKENDS)}.",
                              "pick a backend from the list.")
        names = {"raft": raft, "flow_completion": flow_completion, "generator": generator}
        if BACKENDS[backend] == "propainter":
            for net, name in names.items():
                if name == NO_FILE:
                    raise VanishError(node, net, f"is '{NO_FILE}', but the backend is propainter.",
                                      f"choose the {net.replace('_', ' ')} file ({OFFICIAL_FILES[net]}), "
                                      f"or set backend to '{NO_FILE}'.")
        return (load_inpaint_model(BACKENDS[backend], names, precision, device, node, backend == ONE_FILL),)

    @classmethod
    def VALIDATE_INPUTS(cls, raft: str, flow_completion: str, generator: str) -> bool:
        """Exempts the file slots from ComfyUI's "value not in list" check (naming them here does).

        A graph saved with official names still runs the flow_fill backend when the folder is empty,
        and a missing file gets :func:`resolve_model_files`' error (names, folders, release URL) when
        the node runs, once. Returning a message here would be shown once per input named above.
        """
        return True


class VanishProPainterInpaint:
    """Fill the masked object in every frame; outputs ready for Composite Frames."""

    DISPLAY_NAME = "ProPainter Inpaint"
    CATEGORY = "Vanish/inpaint"
    FUNCTION = "inpaint"
    RETURN_TYPES = ("IMAGE", "MASK", CROP_TYPE)
    RETURN_NAMES = ("filled", "mask", "crop")
    OUTPUT_TOOLTIPS = (
        "Filled frames at the original pixel scale (the crop region only when crop is on); "
        "outside 'mask' they equal the input exactly.",
        "The mask actually filled (dilated, full frame size): connect it to Composite Frames.",
        "Where 'filled' belongs in the frame ({x, y, width, height}): connect it to Composite Frames.",
    )
    DESCRIPTION = (
        "Removes the masked object from every frame with ProPainter (flow completion, propagation, "
        "transformer) or the weights-free backend. Official option names and defaults; long clips "
        "stream through segments sized to the free memory (out-of-memory retries with smaller "
        "segments); 'crop auto' processes only the region around the mask for small objects in big "
        "frames. Pixels outside the dilated mask are never changed."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        def integer(default: int, low: int, high: int, tip: str) -> tuple[str, dict]:
            return ("INT", {"default": default, "min": low, "max": high, "step": 1, "tooltip": tip})

        return {"required": {
            "images": ("IMAGE", {"tooltip": "The frames [frames, height, width, 3]."}),
            "mask": ("MASK", {"tooltip": "What to remove: nonzero = object; one mask per frame, or one for all."}),
            "model": (MODEL_TYPE, {"tooltip": "From ProPainter Model Loader."}),
            "mask_dilation": integer(4, 0, 64, "Official mask_dilation: cross dilations of the mask before filling."),
            "flow_mask_dilation": integer(-1, -1, 64, "Dilation of the region whose flow is completed; -1 = the "
                                          "backend's default (ProPainter: same as mask_dilation, as officially)."),
            "neighbor_length": integer(10, 2, 100, "Official neighbor_length: local frames per generator window."),
            "ref_stride": integer(10, 1, 100, "Official ref_stride: distance between global reference frames."),
            "subvideo_length": integer(80, 1, 1000, "Official subvideo_length: frames per flow-completion/propagation "
                                       "chunk, and the default streamed segment."),
            "raft_iter": integer(20, 1, 64, "Official raft_iter: RAFT refinement iterations."),
            "size_mode": (["scale", "long side"], {"default": "scale",
                          "tooltip": "How the processing size is set: a scale of the (cropped) frames, or their "
                                     "long side in pixels. Rounded to multiples of 8 (>= 128) for ProPainter."}),
            "scale": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 4.0, "step": 0.05,
                      "tooltip": "Processing scale when size_mode is 'scale' (1.0 = official, no resize)."}),
            "long_side": integer(960, 16, 8192, "Processing long side in pixels when size_mode is 'long side'."),
            "crop": (["off", "auto"], {"default": "off",
                     "tooltip": "auto: process only the mask's extent over the clip plus crop_margin (when it is "
                                "at most half the frame) and return that crop; off: the whole frame (official)."}),
            "crop_margin": integer(64, 0, 2048, "Context pixels kept around the mask's extent when cropping."),
            "segment_length": integer(0, 0, 100000, "Frames per streamed segment; 0 = subvideo_length, shortened "
                                      "automatically to fit the free memory."),
        }}

    def inpaint(self, images: torch.Tensor, mask: torch.Tensor, model: InpaintModel, mask_dilation: int,
                flow_mask_dilation: int, neighbor_length: int, ref_stride: int, subvideo_length: int,
                raft_iter: int, size_mode: str, scale: float, long_side: int, crop: str, crop_margin: int,
                segment_length: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        node = self.DISPLAY_NAME
        frames = check_image(images, node, "images")
        holes = match_mask_to_frames(check_mask(mask, node, "mask"), frames, node, "mask", "images") > 0
        if not isinstance(model, InpaintModel):
            raise VanishError(node, "model", f"must come from ProPainter Model Loader, got {type(model).__name__}.",
                              "connect the loader's model output.")
        t, h, w = holes.shape
        if not bool(holes.any()):  # nothing to remove
            return frames.cpu(), torch.zeros((t, h, w)), inpaint_runner.CropBox(0, 0, w, h).as_dict()
        settings = RunSettings(
            backend=model.backend, mask_dilation=mask_dilation, flow_mask_dilation=flow_mask_dilation,
            neighbor_length=neighbor_length, ref_stride=ref_stride, subvideo_length=subvideo_length,
            raft_iter=raft_iter, size_mode=size_mode, scale=scale, long_side=long_side, crop=crop,
            crop_margin=crop_margin, segment_length=segment_length, half=model.dtype != torch.float32,
            cpu_bf16=model.cpu_bf16, flow_fill_second_draw=model.flow_fill_second_draw)
        result = run_with_model(frames, holes, settings, model, node)
        for note in result.notes:
            logger.warning("%s: %s", node, note)
        return result.filled, result.mask_used.float(), result.crop.as_dict()


def run_with_model(frames: torch.Tensor, holes: torch.Tensor, settings: RunSettings, model: InpaintModel,
                   node: str) -> inpaint_runner.RunResult:
    """Run the runner with ComfyUI's memory, progress and cancel hooks; errors become VanishError."""
    from ..propainter_core import Cancelled, InpaintInputError

    host = Host(free_memory=lambda: _comfy.free_memory(model.device), empty_cache=_comfy.soft_empty_cache,
                progress=_comfy.progress_callback(100), should_cancel=_comfy.is_interrupted)
    try:
        networks = model.networks() if model.backend == "propainter" else None
        return inpaint_runner.run_inpaint(frames, holes, settings, networks, host)
    except (Cancelled, flow_fill.InpaintCancelled):
        _comfy.throw_if_interrupted()
        raise
    except inpaint_runner.InpaintMemoryError as error:
        raise VanishError(node, None, str(error)) from error
    except InpaintInputError as error:
        raise VanishError(node, None, f"ProPainter cannot process this input: {error}",
                          "check the frames and mask sizes, or the settings named above.") from error
    finally:
        model.release()


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "VanishProPainterModelLoader": VanishProPainterModelLoader,
    "VanishProPainterInpaint": VanishProPainterInpaint,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {k: v.DISPLAY_NAME for k, v in NODE_CLASS_MAPPINGS.items()}
