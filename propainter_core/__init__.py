"""Our own pure-PyTorch ProPainter: RAFT, recurrent flow completion and the InpaintGenerator.

Imports torch and safetensors only; never ComfyUI, cv2 or sam2. It never picks a device,
prints, downloads or empties caches: the caller passes the device, and progress and
cancellation are plain callables.

Usage::

    import propainter_core

    models = propainter_core.load_models(raft="raft-things.pth",
                                         flow_completion="recurrent_flow_completion.pth",
                                         generator="ProPainter.pth", device="cpu")
    result = propainter_core.inpaint(frames, masks, models)
    # frames uint8 [T, H, W, 3] RGB, masks [T, H, W] (nonzero = remove) -> uint8 [T, H', W', 3]

``inpaint`` reproduces the official ``inference_propainter.py`` (same options and defaults)
and streams long clips segment by segment so that device memory does not grow with the clip.
"""
from __future__ import annotations

from .config import InpaintSettings
from .pipeline import (Cancelled, InpaintInputError, ProPainterModels, inpaint, load_models,
                       run_inpaint)

__all__ = [
    "Cancelled",
    "InpaintInputError",
    "InpaintSettings",
    "ProPainterModels",
    "inpaint",
    "load_models",
    "run_inpaint",
]
