"""Effects stage: grow the object mask by the shadow and reflection the object casts.

The math lives in :mod:`.ops.effects` (weights-free finder, SAM 2 refinement, VOID quadmask);
this module only checks inputs and wires the widgets.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, image_to_uint8, match_mask_to_frames
from .ops import sam2_loader
from .ops.effects import EFFECT_KINDS, EffectsSettings, find_effects, quadmask
from .ops.effects.preview import effects_preview
from .ops.effects.sam2_refine import refine_effects

logger = logging.getLogger(__name__)

MAX_REACH = 4096


class VanishEffectsMask:
    """Find the shadow (and reflection) the masked object casts; return the grown mask."""

    DISPLAY_NAME = "Effects Mask"
    CATEGORY = "Vanish/mask"
    FUNCTION = "find"
    RETURN_TYPES = ("MASK", "MASK", "IMAGE", "MASK")
    RETURN_NAMES = ("mask", "effects_mask", "preview", "quadmask")
    OUTPUT_TOOLTIPS = (
        "The object mask grown by its effects (shadow, reflection): what to remove. Connect it to "
        "Mask Dilate & Blur, then to the inpainter and Composite Frames.",
        "The effects alone (1 = shadow or reflection of the object, never on the object itself).",
        "The frames with the object's outline in red and the found effects tinted cyan.",
        "The VOID model's four-level mask (0 = object, 63/255 = overlap, 127/255 = affected area, "
        "1 = keep) for core's VOID Quadmask Preprocessor.",
    )
    DESCRIPTION = (
        "Finds what the object casts, without model weights: each frame is compared with its "
        "background, made from neighbouring frames aligned by the camera motion. A shadow is "
        "darker with the same colour; a reflection is the object mirrored about where it meets "
        "the floor. Regions must lie within reach of the object and move with it from frame to "
        "frame, so static shadows, dark paint or parked cars are left alone. Needs the object to "
        "move relative to the ground (a clip of one frame, or a still object, gives no effects). "
        "Optionally SAM 2 turns the found region into a crisp tracked mask."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "The clip [frames, height, width, 3]."}),
                "mask": ("MASK", {"tooltip": "The object masks [frames, height, width], 1 = object "
                                             "(e.g. from SAM 2 Propagate); one mask per frame."}),
                "effects": (list(EFFECT_KINDS), {"default": "shadow", "tooltip":
                            "What to look for: the cast shadow, the mirror reflection on a glossy "
                            "floor or water, or both."}),
                "sensitivity": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                                "tooltip": "Higher finds fainter shadows and reflections (and "
                                           "more false ones); lower keeps only strong ones."}),
                "max_reach": ("INT", {"default": 96, "min": 1, "max": MAX_REACH, "step": 1,
                              "tooltip": "How far from the object (pixels) an effect may extend. "
                                         "A region must also start within a quarter of this."}),
                "enabled": ("BOOLEAN", {"default": True, "tooltip":
                            "Off: pass the mask through unchanged (empty effects), to compare "
                            "the removal with and without its effects."}),
            },
            "optional": {
                "sam2_model": ("VANISH_SAM2_MODEL", {"tooltip":
                               "Optional, from SAM 2 Model Loader: the found effects become a "
                               "prompt (box and point) for a second tracked object, so SAM 2 "
                               "draws a crisp effects mask."}),
            },
        }

    def find(self, frames: torch.Tensor, mask: torch.Tensor, effects: str, sensitivity: float,
             max_reach: int, enabled: bool = True, sam2_model=None) -> tuple:
        node = self.DISPLAY_NAME
        images = check_image(frames, node, "frames")
        masks = match_mask_to_frames(check_mask(mask, node, "mask"), images, node, "mask", "frames")
        if effects not in EFFECT_KINDS:
            raise VanishError(node, "effects", f"is {effects!r}, not one of {list(EFFECT_KINDS)}.",
                              "pick shadow, reflection or shadow + reflection.")
        if sam2_model is not None and not isinstance(sam2_model, sam2_loader.SAM2Handle):
            raise VanishError(node, "sam2_model", f"must come from SAM 2 Model Loader, got "
                              f"{type(sam2_model).__name__}.", "connect a SAM 2 Model Loader node, or nothing.")
        objects = (masks > 0.5).cpu().numpy()
        found = np.zeros_like(objects)
        if enabled and objects.any():
            settings = EffectsSettings(effects, float(sensitivity), int(max_reach))  # type: ignore[arg-type]
            found = find_effects(image_to_uint8(images).numpy(), objects, settings,
                                 progress=_comfy.progress_callback(images.shape[0]),
                                 should_cancel=lambda: _comfy.throw_if_interrupted() or False)
            if sam2_model is not None:
                with sam2_model.acquire() as predictor:
                    found = refine_effects(predictor, images, found, objects, int(max_reach))
        effects_mask = torch.from_numpy(found & ~objects).float()
        grown = torch.maximum(masks.float().cpu(), effects_mask)
        logger.debug("effects on %d of %d frames", int(found.any((1, 2)).sum()), found.shape[0])
        preview = effects_preview(images, torch.from_numpy(objects), effects_mask > 0.5)
        return grown, effects_mask, preview, quadmask(torch.from_numpy(objects), torch.from_numpy(found))


NODE_CLASS_MAPPINGS: dict[str, type] = {"VanishEffectsMask": VanishEffectsMask}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {"VanishEffectsMask": VanishEffectsMask.DISPLAY_NAME}
