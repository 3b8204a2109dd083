"""Metrics stage: how temporally consistent is the result? (warp error over the filled region)."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import cv2
import numpy as np
import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, match_mask_to_frames
from .ops import warp_error as warp_ops

logger = logging.getLogger(__name__)

REGIONS = ("filled region", "whole frame")
FLOW_SOURCES = ("result", "original")
MAX_SEAM_WIDTH = 64
PREVIEW_SUBFOLDER = "vanish_metrics"
"""Temp subfolder of the report images the node shows (ComfyUI empties temp at start)."""


class VanishWarpErrorMetric:
    """E_warp: mean squared difference between each frame and the previous frame warped onto it."""

    DISPLAY_NAME = "Warp Error (temporal consistency)"
    CATEGORY = "Vanish/metrics"
    FUNCTION = "measure"
    # An output node: ComfyUI runs it even when nothing consumes its outputs, and it shows the
    # mean and the per-frame plot on the node (the shipped workflows leave its outputs open).
    OUTPUT_NODE = True
    RETURN_TYPES = ("FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("mean", "per_frame", "plot")
    OUTPUT_TOOLTIPS = (
        "E_warp over all counted pixels of all frame pairs. Pixel values on the 0..1 scale; squared RGB "
        "distance summed over the 3 channels, so 0 = perfectly consistent, 3 = maximum. "
        "0.0 when nothing can be measured (a single frame).",
        "JSON: mean, per_frame (entry t = frame t+1 against frame t warped; null = no pixel counted), "
        "pixels counted per pair, worst_pair, and the seam error per frame when asked for.",
        "A plot of the error per frame pair above a heat map of the worst pair.",
    )
    DESCRIPTION = (
        "Measures temporal consistency (flicker) of a video: E_warp = (1/|Ω|) Σ_t Σ_{p∈Ω_t} "
        "‖I'_{t+1}(p) − I'_t warped to t+1 (p)‖², Ω_t = M_t ∩ M_{t+1}, over the filled region or the whole "
        "frame. Flow by OpenCV (DIS or Farneback) on the result or the original frames; a forward-backward "
        "check drops occluded pixels. Lower is better; compare results of the same clip and mask."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "The video to judge (e.g. the output of Composite Frames), 0..1."}),
                "region": (list(REGIONS), {"default": REGIONS[0],
                           "tooltip": "filled region: only pixels inside the mask in both frames of a pair "
                                      "(needs 'mask'); whole frame: every pixel."}),
                "flow_method": (sorted(warp_ops.FLOW_METHODS), {"default": "dis",
                                "tooltip": "OpenCV optical flow: dis (fast, robust) or farneback (smooth)."}),
                "flow_source": (list(FLOW_SOURCES), {"default": FLOW_SOURCES[0],
                                "tooltip": "Estimate the flow on the result, or on the original frames "
                                           "(needs 'original'; inside the mask it then follows the removed object)."}),
                "occlusion_check": ("BOOLEAN", {"default": True,
                                    "tooltip": "Drop pixels whose forward and backward flows disagree (occluded "
                                               "or unreliable)."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "The filled region (binarised at 0.5); a single mask is used for "
                                             "every frame."}),
                "original": ("IMAGE", {"tooltip": "The original frames, for flow_source = original."}),
                "seam_width": ("INT", {"default": 0, "min": 0, "max": MAX_SEAM_WIDTH, "step": 1,
                               "tooltip": "> 0 also measures the boundary seam: gradient energy on the mask edge "
                                          "minus that in a ring this many pixels wide outside it (0..1 scale; "
                                          "about 0 = seamless). Needs 'mask'."}),
            },
        }

    def measure(self, frames: torch.Tensor, region: str, flow_method: str, flow_source: str,
                occlusion_check: bool, mask: torch.Tensor | None = None, original: torch.Tensor | None = None,
                seam_width: int = 0) -> tuple[float, str, torch.Tensor]:
        node = self.DISPLAY_NAME
        video = check_image(frames, node, "frames")
        masks = _read_mask(mask, video, region, int(seam_width), node)
        flow_frames = _read_flow_frames(original, video, flow_source, node)
        if flow_method not in warp_ops.FLOW_METHODS:
            raise VanishError(node, "flow_method", f"is {flow_method!r}, not one of {sorted(warp_ops.FLOW_METHODS)}.",
                              "pick dis or farneback.")
        _check_flow_size(video, flow_method, node)
        progress = _comfy.Progress(max(video.shape[0] - 1, 1))

        def on_pair(_index: int) -> None:
            _comfy.throw_if_interrupted()
            progress.update()

        result = warp_ops.warp_error(video, masks, flow_method=flow_method, flow_frames=flow_frames,
                                     occlusion_check=bool(occlusion_check), seam_width=int(seam_width),
                                     whole_frame=region == REGIONS[1], on_pair=on_pair,
                                     check=_comfy.throw_if_interrupted)
        logger.info("warp error %.6g over %d pairs", result.mean, len(result.per_frame))
        report = warp_ops.render_report(result, video.cpu())  # [H, W, 3] uint8
        plot = torch.from_numpy(report).float().div_(255.0)[None]
        outputs = (float(result.mean), result.to_json(), plot)
        return {"ui": preview_ui(report, result), "result": outputs}


def _check_flow_size(video: torch.Tensor, flow_method: str, node: str) -> None:
    if video.shape[0] < 2:
        return  # no pair, no flow
    try:
        warp_ops.check_flow_size(flow_method, video.shape[2], video.shape[1])
    except warp_ops.FrameTooSmall as exc:
        raise VanishError(node, "frames", f"is too small: {exc}.",
                          "set flow_method to farneback (it takes any size), or measure the frames "
                          f"before they are shrunk below {exc.minimum}x{exc.minimum}.") from None


def summary_text(result: warp_ops.WarpErrorResult) -> str:
    """One line for the node's face: the mean, the pairs and the worst pair."""
    pairs = len(result.per_frame)
    if result.worst_pair is None:
        return f"E_warp: nothing measured ({pairs} frame pairs)"
    worst = result.per_frame[result.worst_pair]
    return (f"E_warp mean {result.mean:.6g} over {pairs} frame pairs; worst "
            f"{result.worst_pair}->{result.worst_pair + 1}: {worst:.6g}")


def preview_ui(report: np.ndarray, result: warp_ops.WarpErrorResult) -> dict:
    """The ``ui`` value core's PreviewImage returns (the report image in temp), plus the text."""
    folder = _comfy.temp_directory() / PREVIEW_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"warp_error_{uuid.uuid4().hex[:16]}.png"
    ok, data = cv2.imencode(".png", cv2.cvtColor(report, cv2.COLOR_RGB2BGR))
    if ok:
        with open(Path(folder) / name, "xb") as handle:
            handle.write(data.tobytes())
    images = [{"filename": name, "subfolder": PREVIEW_SUBFOLDER, "type": "temp"}] if ok else []
    return {"images": images, "text": [summary_text(result)]}


def _read_mask(mask: object, video: torch.Tensor, region: str, seam_width: int, node: str) -> torch.Tensor | None:
    if region not in REGIONS:
        raise VanishError(node, "region", f"is {region!r}, not one of {list(REGIONS)}.",
                          "pick 'filled region' or 'whole frame'.")
    if mask is None:
        if region == REGIONS[0]:
            raise VanishError(node, "mask", "is not connected, but region is 'filled region'.",
                              "connect the mask used for inpainting, or set region to 'whole frame'.")
        if seam_width > 0:
            raise VanishError(node, "mask", "is not connected, but seam_width asks for the seam error.",
                              "connect the mask, or set seam_width to 0.")
        return None
    return match_mask_to_frames(check_mask(mask, node, "mask"), video, node, "mask", "frames")


def _read_flow_frames(original: object, video: torch.Tensor, flow_source: str, node: str) -> torch.Tensor | None:
    if flow_source not in FLOW_SOURCES:
        raise VanishError(node, "flow_source", f"is {flow_source!r}, not one of {list(FLOW_SOURCES)}.",
                          "pick 'result' or 'original'.")
    if flow_source == FLOW_SOURCES[0]:
        return None
    if original is None:
        raise VanishError(node, "original", "is not connected, but flow_source is 'original'.",
                          "connect the original frames, or set flow_source to 'result'.")
    source = check_image(original, node, "original")
    if source.shape != video.shape:
        raise VanishError(node, "original", f"is {list(source.shape)} but 'frames' is {list(video.shape)}.",
                          "connect the original frames of the same clip at the same size and frame selection.")
    return source


NODE_CLASS_MAPPINGS: dict[str, type] = {"VanishWarpErrorMetric": VanishWarpErrorMetric}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {"VanishWarpErrorMetric": VanishWarpErrorMetric.DISPLAY_NAME}
