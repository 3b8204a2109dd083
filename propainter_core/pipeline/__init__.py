"""The inpainting pipeline: chunking, reference choice, precision policy, staged run, public API."""
from __future__ import annotations

from .api import inpaint
from .compiled import CompiledOrEager, compile_models
from .chunking import Window, neighbour_windows, overlapping_windows, raft_clip_windows
from .errors import Cancelled, InpaintInputError
from .models import ProPainterModels, load_models
from .precision import Precision, resolve_precision
from .references import local_reference_count, reference_frames
from .run import DEFAULT_SEGMENT_PADDING, plan_segments, run_inpaint

__all__ = [
    "DEFAULT_SEGMENT_PADDING",
    "Cancelled",
    "CompiledOrEager",
    "InpaintInputError",
    "Precision",
    "ProPainterModels",
    "Window",
    "compile_models",
    "inpaint",
    "load_models",
    "local_reference_count",
    "neighbour_windows",
    "overlapping_windows",
    "plan_segments",
    "raft_clip_windows",
    "reference_frames",
    "resolve_precision",
    "run_inpaint",
]
