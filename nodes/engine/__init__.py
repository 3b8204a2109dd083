"""The streaming removal engine: source file -> removed-object output file, ComfyUI-free.

(documentation below is completed at the end of the work)
"""
from __future__ import annotations

from ..ops.inpaint_runner import RunSettings
from ..ops.sam2_prompts import PromptSet
from .errors import Cancelled, EngineError
from .masks import MaskSource, MaskStore, open_mask_source
from .run import run_removal
from .segments import Segment, SegmentOutput, run_segment, segment_plan
from .settings import MaskOptions, OutputOptions, RemovalResult, RemovalSettings
from .sources import FrameSource, open_source

__all__ = [
    "Cancelled", "EngineError", "FrameSource", "MaskOptions", "MaskSource", "MaskStore", "OutputOptions",
    "PromptSet", "RemovalResult", "RemovalSettings", "RunSettings", "Segment", "SegmentOutput",
    "open_mask_source", "open_source", "run_removal", "run_segment", "segment_plan",
]
