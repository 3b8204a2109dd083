"""Mask stage: clean up, grow, feather and steady the object masks before inpainting.

The math lives in :mod:`.ops.mask_ops`; this module only checks inputs and wires the widgets.
"""
from __future__ import annotations

import logging

import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, match_mask_to_frames
from .ops import mask_ops
from ._memory import require_ram
from .ops.mask_ops import MaskRefineSettings

logger = logging.getLogger(__name__)

MAX_RADIUS = 512
#: float32 planes per mask pixel the node holds at its peak: soft, hard and the RGB preview
#: (5), the working copy and a step's result (2), and a step's temporaries (2).
PLANES_PER_PIXEL = 9


class VanishMaskDilateBlur:
    """Grow/shrink, fill holes, drop islands, feather, smooth over time, refine on edges, invert."""

    DISPLAY_NAME = "Mask Dilate & Blur"
    CATEGORY = "Vanish/mask"
    FUNCTION = "refine"
    RETURN_TYPES = ("MASK", "MASK", "IMAGE")
    RETURN_NAMES = ("soft_mask", "hard_mask", "preview")
    OUTPUT_TOOLTIPS = (
        "The refined mask in 0..1 with feathered edges. Connect it to Composite Frames.",
        "1 wherever soft_mask is above 1/255 (every pixel the composite can change), else 0. "
        "Connect it to the inpainter so the whole feathered edge is filled.",
        "The soft mask in red over the guide frames (over grey when no guide is connected).",
    )
    DESCRIPTION = (
        "Prepares object masks for video inpainting or background replacement: fill holes, drop "
        "small islands, grow (or shrink) with a disk, diamond or square, smooth across frames so "
        "the mask does not jitter, feather the edge, optionally snap soft edges to the image "
        "(guided filter, for hair) and invert (keep the subject, replace everything else). "
        "Steps run in that order, on the mask's device."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "mask": ("MASK", {"tooltip": "Object masks [frames, height, width], 1 = object (e.g. from SAM 2)."}),
                "grow": ("INT", {"default": 4, "min": -MAX_RADIUS, "max": MAX_RADIUS, "step": 1,
                                 "tooltip": "Pixels to grow the mask by; negative shrinks it. "
                                            "Grow by at least 2x feather so the object's edge is fully covered."}),
                "shape": (list(mask_ops.MASK_SHAPES), {"default": "disk",
                          "tooltip": "Shape used to grow/shrink: disk (round), diamond (city-block) or square."}),
                "fill_holes": ("BOOLEAN", {"default": False,
                               "tooltip": "Fill unselected regions enclosed by the mask (judged at 0.5)."}),
                "min_island_area": ("INT", {"default": 0, "min": 0, "max": 1 << 24, "step": 1,
                                    "tooltip": "Drop separate mask pieces smaller than this many pixels "
                                               "(0 keeps everything). Applied before growing."}),
                "feather": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 256.0, "step": 0.5,
                            "tooltip": "Gaussian blur of the edge, sigma in pixels (0 = hard edge)."}),
                "temporal_sigma": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 30.0, "step": 0.25,
                                   "tooltip": "Gaussian smoothing across frames, sigma in frames, so the "
                                              "mask does not jitter (0 = off)."}),
                "invert": ("BOOLEAN", {"default": False,
                           "tooltip": "Select everything except the object: for background removal "
                                      "or replacement (keep the subject, replace the rest)."}),
            },
            "optional": {
                "guide": ("IMAGE", {"tooltip": "The video frames. When connected, soft edges are refined "
                                               "with a guided filter so they follow the image (hair, fur)."}),
                "guide_radius": ("INT", {"default": 8, "min": 1, "max": 128, "step": 1,
                                 "tooltip": "Guided-filter window radius in pixels (used only with a guide). "
                                            "Clamped to the frame's smaller side minus 1 on tiny frames."}),
                "guide_eps": ("FLOAT", {"default": 1e-3, "min": 1e-6, "max": 1.0, "step": 1e-4,
                              "tooltip": "Guided-filter smoothness (squared 0..1 intensity); smaller "
                                         "follows image edges more closely."}),
            },
        }

    def refine(self, mask: torch.Tensor, grow: int, shape: str, fill_holes: bool, min_island_area: int,
               feather: float, temporal_sigma: float, invert: bool, guide: torch.Tensor | None = None,
               guide_radius: int = 8, guide_eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        node = self.DISPLAY_NAME
        masks = check_mask(mask, node, "mask")
        if shape not in mask_ops.MASK_SHAPES:
            raise VanishError(node, "shape", f"is {shape!r}, not one of {list(mask_ops.MASK_SHAPES)}.",
                              "pick disk, diamond or square.")
        frames = None
        if guide is not None:
            frames = check_image(guide, node, "guide")
            if frames.shape[0] == 1 and masks.shape[0] > 1:
                frames = frames.expand(masks.shape[0], -1, -1, -1)
            masks = match_mask_to_frames(masks, frames, node, "mask", "guide")
        t, h, w = masks.shape
        require_ram(node, PLANES_PER_PIXEL * 4 * t * h * w, f"the masks and the preview of {t} frames at {w}x{h}",
                    "process the clip in shorter parts, or at a smaller size (scale the mask and guide down).")
        if guide is not None and mask_ops.usable_guide_radius(guide_radius, h, w) < guide_radius:
            logger.warning("%s: guide_radius %d is too large for %dx%d frames; using %d", node, guide_radius,
                           w, h, mask_ops.usable_guide_radius(guide_radius, h, w))
        settings = MaskRefineSettings(
            fill_holes=bool(fill_holes), min_island_area=int(min_island_area), grow=int(grow),
            shape=shape, temporal_sigma=float(temporal_sigma), feather=float(feather),
            guide_radius=int(guide_radius), guide_eps=float(guide_eps), invert=bool(invert))
        soft, hard = mask_ops.refine_masks(masks, settings, frames, check=_comfy.throw_if_interrupted)
        logger.debug("refined %d masks: %s", soft.shape[0], settings)
        preview = mask_ops.mask_overlay(soft, frames)
        return soft.float().cpu(), hard.float().cpu(), preview


NODE_CLASS_MAPPINGS: dict[str, type] = {"VanishMaskDilateBlur": VanishMaskDilateBlur}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {"VanishMaskDilateBlur": VanishMaskDilateBlur.DISPLAY_NAME}
