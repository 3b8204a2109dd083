"""Composite stage: put the filled pixels back into the full-resolution original frames.

Wherever the mask is 0 the result is the original, bit for bit. The same node replaces a
background (fill = the new background, mask = the inverted subject mask).
"""
from __future__ import annotations

import logging

import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, match_mask_to_frames
from ._memory import require_ram
from .ops import composite_ops
from .ops.composite_ops import CropRegion

logger = logging.getLogger(__name__)

# The custom type an inpainter hands over with a crop fill: {"x", "y", "width", "height"}.
CROP_TYPE = "VANISH_CROP"
MAX_RING = 256


class VanishCompositeFrames:
    """Blend fill frames (any resolution, or a crop) into the original frames through a soft mask."""

    DISPLAY_NAME = "Composite Frames"
    CATEGORY = "Vanish/composite"
    FUNCTION = "composite"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The original frames at their full resolution with the masked region taken "
                       "from the fill; unmasked pixels are the original's exact values.",)
    DESCRIPTION = (
        "Pastes filled frames into the untouched originals: output = original where the mask is 0, "
        "fill where it is 1, a blend in between. The fill may be at any resolution (resized with "
        "antialiased bicubic) or a crop placed by a VANISH_CROP region. For background replacement "
        "connect the new background as fill (one image is reused for every frame) and the inverted "
        "subject mask. Works frame by frame."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "original": ("IMAGE", {"tooltip": "The original frames at full resolution."}),
                "fill": ("IMAGE", {"tooltip": "Filled frames (e.g. from ProPainter Inpaint) at any resolution, "
                                              "or a new background; a single frame is used for every frame."}),
                "mask": ("MASK", {"tooltip": "Soft mask at the original's size: 1 = take the fill, 0 = keep the "
                                             "original exactly. A single mask is used for every frame."}),
                "color_match": ("BOOLEAN", {"default": False,
                                "tooltip": "Match the fill's colours (mean and contrast per channel) to the "
                                           "original in a ring around the hole, per frame."}),
                "ring_width": ("INT", {"default": 16, "min": 1, "max": MAX_RING, "step": 1,
                               "tooltip": "Width in pixels of the ring around the hole used for colour matching."}),
            },
            "optional": {
                "crop": (CROP_TYPE, {"tooltip": "Where the fill frames belong when they are a crop: "
                                                "{x, y, width, height} in original pixels. The fill is resized "
                                                "to width x height and pasted at (x, y); the rest stays original."}),
            },
        }

    def composite(self, original: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor, color_match: bool,
                  ring_width: int, crop: dict | None = None) -> tuple[torch.Tensor]:
        node = self.DISPLAY_NAME
        frames = check_image(original, node, "original")
        fills = check_image(fill, node, "fill")
        masks = match_mask_to_frames(check_mask(mask, node, "mask"), frames, node, "mask", "original")
        if fills.shape[0] not in (1, frames.shape[0]):
            raise VanishError(node, "fill", f"has {fills.shape[0]} frames but 'original' has {frames.shape[0]}.",
                              "give one fill frame per original frame, or a single image to reuse for every frame.")
        region = _read_crop(crop, frames.shape[2], frames.shape[1], node)
        t, h, w = frames.shape[:3]
        # the float32 RGB output of the whole clip, plus one frame's temporaries
        require_ram(node, 4 * 3 * (t + 4) * h * w, f"the composite of {t} frames at {w}x{h}",
                    "composite the clip in shorter parts (e.g. load it with frame_load_cap and skip_first_frames).")
        progress = _comfy.Progress(frames.shape[0])

        def on_frame(_index: int) -> None:
            _comfy.throw_if_interrupted()
            progress.update()

        out = composite_ops.composite_frames(frames, fills, masks, crop=region,
                                             color_ring=int(ring_width) if color_match else 0, on_frame=on_frame,
                                             check=_comfy.throw_if_interrupted)
        return (out,)


def _read_crop(crop: object, width: int, height: int, node: str) -> CropRegion | None:
    """Validate the optional ``VANISH_CROP`` input against a ``width`` x ``height`` original."""
    if crop is None:
        return None
    try:
        region = CropRegion.from_value(crop)  # type: ignore[arg-type]
    except ValueError as exc:
        raise VanishError(node, "crop", f"is not a valid crop region: {exc}.",
                          "connect the crop output of the node that made the crop fill.") from exc
    if not region.fits(width, height):
        raise VanishError(node, "crop", f"{region.as_dict()} reaches outside the {width}x{height} original.",
                          "use the crop made for these frames (same clip, same size).")
    return region


NODE_CLASS_MAPPINGS: dict[str, type] = {"VanishCompositeFrames": VanishCompositeFrames}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {"VanishCompositeFrames": VanishCompositeFrames.DISPLAY_NAME}
