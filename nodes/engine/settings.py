"""What a removal job is asked to do (frozen dataclasses; they hash into the work folder's key)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ops.inpaint_runner import RunSettings
from ..ops.mask_ops import MaskRefineSettings, MaskShape


@dataclass(frozen=True)
class MaskOptions:
    """What the Mask Dilate & Blur node does, applied window by window (same names as its inputs).

    ``threshold`` applies to a mask video or image only (Load Video Frames' ``mask_threshold``:
    0 keeps grey levels, above 0 makes 0/1).
    """

    grow: int = 8
    shape: MaskShape = "disk"
    fill_holes: bool = False
    min_island_area: int = 0
    feather: float = 2.0
    temporal_sigma: float = 0.0
    invert: bool = False
    threshold: float = 0.0

    def refine_settings(self) -> MaskRefineSettings:
        return MaskRefineSettings(fill_holes=self.fill_holes, min_island_area=self.min_island_area,
                                  grow=self.grow, shape=self.shape, temporal_sigma=self.temporal_sigma,
                                  feather=self.feather, invert=self.invert)


@dataclass(frozen=True)
class OutputOptions:
    """What Save Video takes: a format of ``video_encode.FORMATS``, its quality, and the sound."""

    format: str = "h264-mp4"
    crf: int = 19
    audio: bool = True
    #: container tags, as Save Video writes them (ComfyUI's ``prompt`` and ``workflow``, so the
    #: file drops back into ComfyUI as its graph); values that are not strings are stored as JSON
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RemovalSettings:
    """Everything that decides the output pixels (plus the output encoding).

    Attributes:
        inpaint: the ProPainter Inpaint node's options (backend, crop, sizes, segment_length).
        mask: the Mask Dilate & Blur options.
        output: the Save Video options (not part of the resume key: segments do not depend on it).
        window: frames owned by one inpainting segment; 0 = the backend's segment length
            (``inpaint.segment_length``, else ProPainter's ``subvideo_length`` / flow_fill's 60).
        context: frames read on each side of a segment; -1 = the backend's own (ProPainter 10,
            flow_fill 30: with it a segment's pixels are traced as far as in the whole-clip run;
            only its recursions start afresh at the segment's ends). Less is faster and changes the
            fill inside the mask only.
    """

    inpaint: RunSettings = field(default_factory=lambda: RunSettings(backend="flow_fill"))
    mask: MaskOptions = field(default_factory=MaskOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    window: int = 0
    context: int = -1


@dataclass
class RemovalResult:
    """What :func:`run_removal` returns.

    Attributes:
        output: the written file (or PNG-sequence folder).
        frames: frames written. segments_run / segments_reused: inpainting segments computed in
            this run / taken from the work folder (resume).
        preview: ``[k, h, w, 3]`` uint8, a few output frames downscaled (long side <= 256).
        work_dir: the job's work folder (removed after success unless ``keep_work``).
        notes: warnings worth showing the user (from the inpaint runner).
    """

    output: Path
    frames: int
    segments_run: int
    segments_reused: int
    preview: np.ndarray = field(repr=False)
    work_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
