"""The inpainting stage, one overlapping segment at a time: read, refine, inpaint, composite.

The clip is cut with the ProPainter core's own ``plan_segments`` (owned chunks that tile the
clip, each read with context frames on both sides). One segment is a pure function of its
inputs (:func:`run_segment`), so it can run in-process, in a Ray task, or again after a crash
with the same bytes. It returns only what changes: for its owned frames, the composited pixels
inside the bounding box of the soft mask (crop-and-stitch); every other pixel of the output is
the source's decoded pixel, pasted by the encoder stage.

Context per backend: ProPainter reads ``DEFAULT_SEGMENT_PADDING`` (10) frames each side, exactly
as its own streamed run does; flow_fill reads ``max_propagation`` (30) frames each side, as its
own windows do. A segment's inpainting runs over its whole span in one go, and the runner crops
to that span's mask extent when ``crop`` is ``auto``.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ...propainter_core.pipeline.run import DEFAULT_SEGMENT_PADDING, plan_segments
from ..ops import composite_ops, flow_fill, inpaint_runner
from ..ops.host_memory import available_ram
from ..ops.mask_ops import nonzero_box
from .errors import Cancelled, EngineError
from .masks import MaskSource, refine_window
from .settings import RemovalSettings
from .sources import FrameSource

logger = logging.getLogger(__name__)

#: Frames decoded and refined at a time inside a segment (a cancel is polled between chunks).
READ_CHUNK = 16


@dataclass(frozen=True)
class Segment:
    """Frames ``start .. stop - 1`` are read; ``core_start .. core_stop - 1`` are owned (written)."""

    index: int
    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def keep(self) -> slice:
        return slice(self.core_start - self.start, self.core_stop - self.start)

    @property
    def name(self) -> str:
        return f"segment_{self.index:05d}_{self.core_start}_{self.core_stop}.npz"


@dataclass
class SegmentOutput:
    """What a segment changes in its owned frames.

    Attributes:
        rect: ``(y0, y1, x0, x1)`` in full-frame pixels, or None when nothing changes.
        pixels: uint8 ``[core frames, y1 - y0, x1 - x0, 3]``: the output there (None with rect None).
    """

    segment: Segment
    rect: tuple[int, int, int, int] | None
    pixels: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    crop: tuple[int, int, int, int] | None = None  # (x, y, width, height) the backend processed (not stored)


def segment_plan(num_frames: int, settings: RemovalSettings) -> list[Segment]:
    """The segments of a clip for these settings (same rule local and on Ray)."""
    inpaint = settings.inpaint
    if inpaint.backend == "flow_fill":
        length = settings.window or inpaint.segment_length or flow_fill.FlowFillSettings().segment_length
        padding = flow_fill.FlowFillSettings().max_propagation
    else:
        length = settings.window or inpaint.segment_length or inpaint.subvideo_length
        padding = DEFAULT_SEGMENT_PADDING
    if settings.context >= 0:
        padding = settings.context
    if inpaint.backend == "flow_fill" and not settings.window and num_frames <= length + 2 * padding:
        # flow_fill's own run holds a window of this many frames anyway: one segment, no frame
        # read or filled twice, and the same fill as the whole-clip run
        length = num_frames
    if length < 1:
        raise EngineError("window", f"is {length}; a segment needs at least one frame.", "set window to 0 or more.")
    return [Segment(i, w.start, w.stop, w.core_start, w.core_stop)
            for i, w in enumerate(plan_segments(num_frames, length, padding))]


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_ram()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """IMAGE floats -> uint8 with Save Video's rule (``rint(clip(x, 0, 1) * 255)``)."""
    values = frames.detach().to("cpu", torch.float32).numpy()
    scaled = np.clip(values, 0.0, 1.0) * np.float32(255)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def run_segment(source: FrameSource, masks: MaskSource, settings: RemovalSettings, segment: Segment,
                models: Any = None, device: str | torch.device = "cpu",
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None) -> SegmentOutput:
    """Inpaint one segment and composite its owned frames (a pure function of its inputs).

    Raises:
        Cancelled: ``should_cancel()`` returned True.
    """
    device = torch.device(device)

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled("the removal was cancelled")

    # mask refinement and decoding go in chunks, so a cancel is seen between them (refine_window
    # of a chunk equals the same frames of a whole-span refinement)
    # the soft mask is needed for the owned frames only (the composite); the hard one everywhere
    keep = segment.keep
    soft = hard = None
    for first in range(segment.start, segment.stop, READ_CHUNK):
        check()
        last = min(segment.stop, first + READ_CHUNK)
        chunk_soft, chunk_hard = refine_window(masks, first, last, settings.mask)
        if hard is None:  # [n, H, W] bool and [core, H, W] float32, filled chunk by chunk
            hard = torch.empty((segment.stop - segment.start, *chunk_hard.shape[1:]), dtype=torch.bool)
            soft = torch.empty((keep.stop - keep.start, *chunk_soft.shape[1:]), dtype=torch.float32)
        hard[first - segment.start:last - segment.start] = chunk_hard
        owned = range(max(first, segment.core_start), min(last, segment.core_stop))
        if owned:
            soft[owned.start - segment.core_start:owned.stop - segment.core_start] = \
                chunk_soft[owned.start - first:owned.stop - first]
        del chunk_soft
    if not bool((soft > 0).any()):
        return SegmentOutput(segment, None, None)
    frames = torch.empty((segment.stop - segment.start, source.height, source.width, 3), dtype=torch.uint8)
    for first in range(segment.start, segment.stop, READ_CHUNK):
        check()
        last = min(segment.stop, first + READ_CHUNK)
        frames[first - segment.start:last - segment.start] = torch.from_numpy(source.read(first, last))
    run_settings = replace(settings.inpaint, segment_length=len(range(segment.start, segment.stop)))
    # flow_fill runs on the CPU whatever the device: its memory plan reads the free RAM.
    planned_on = device if settings.inpaint.backend == "propainter" else torch.device("cpu")
    host = inpaint_runner.Host(free_memory=lambda: _free_memory(planned_on), progress=progress,
                               should_cancel=should_cancel,
                               empty_cache=(torch.cuda.empty_cache if device.type == "cuda" else (lambda: None)))
    from ...propainter_core import Cancelled as CoreCancelled
    from ...propainter_core import InpaintInputError

    try:
        result = inpaint_runner.run_inpaint(frames, hard, run_settings, models, host, keep=keep, lazy=True)
    except (CoreCancelled, flow_fill.InpaintCancelled) as exc:
        raise Cancelled(str(exc)) from exc
    except inpaint_runner.InpaintMemoryError as exc:
        raise EngineError("inpaint", str(exc), "use a smaller processing size (size_mode 'long side'), "
                          + ("crop 'auto', or a GPU." if settings.inpaint.backend == "propainter"
                             else "crop 'auto', or a shorter clip.")) from exc
    except InpaintInputError as exc:
        raise EngineError("inpaint", f"ProPainter cannot process this input: {exc}",
                          "check the inpaint settings named above.") from exc
    return _composite(frames, soft, result, segment)


def _composite(frames: torch.Tensor, soft: torch.Tensor, result: inpaint_runner.RunResult,
               segment: Segment) -> SegmentOutput:
    """Composite Frames on the owned frames, inside the soft mask's bounding box only.

    Args:
        frames: the span's uint8 frames. soft: ``[core, H, W]`` the owned frames' soft masks.
        result: the runner's result for the owned frames (``keep``).
    """
    keep = range(segment.keep.start, segment.keep.stop)
    box = result.crop
    region = torch.zeros(soft.shape[1:], dtype=torch.bool)
    region[box.slices()] = True
    touched = nonzero_box((soft > 0) & region)
    processed = (box.x, box.y, box.width, box.height)
    if touched is None:
        return SegmentOutput(segment, None, None, result.notes, processed)
    y0, y1, x0, x1 = touched
    # the original pixels, then each frame's blend inside the box of ITS soft mask only: outside
    # it the composite is the original exactly (weight 0), and u8 -> IMAGE float -> u8 is exact
    out = frames[keep.start:keep.stop, y0:y1, x0:x1].numpy().copy()
    for j, i in enumerate(keep):
        weight = soft[j, box.y:box.y + box.height, box.x:box.x + box.width]  # [h, w] crop coordinates
        own = nonzero_box(weight)
        if own is None:
            continue
        a0, a1, b0, b1 = own
        original = frames[i, box.y + a0:box.y + a1, box.x + b0:box.x + b1].float() / 255.0  # the IMAGE values
        fill = result.filled[j][a0:a1, b0:b1]
        blended = composite_ops.composite_frame(original, fill, weight[a0:a1, b0:b1])
        out[j, box.y + a0 - y0:box.y + a1 - y0, box.x + b0 - x0:box.x + b1 - x0] = to_uint8(blended)
    return SegmentOutput(segment, (y0, y1, x0, x1), out, result.notes, processed)


# --------------------------------------------------------------------------- storage
def save_segment(folder: Path, output: SegmentOutput) -> Path:
    """Write a segment's output into ``folder`` atomically (temporary file, then rename)."""
    target = folder / output.segment.name
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-", suffix=".npz", delete=False)
    try:
        with handle:
            rect = np.asarray(output.rect if output.rect is not None else (0, 0, 0, 0), np.int64)
            pixels = output.pixels if output.pixels is not None else np.zeros((0, 0, 0, 3), np.uint8)
            np.savez(handle, rect=rect, pixels=pixels, notes=np.asarray(output.notes, dtype=str))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return target


def load_segment(folder: Path, segment: Segment) -> SegmentOutput | None:
    """The stored output of ``segment``, or None when it is not there (or unreadable)."""
    path = folder / segment.name
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            rect = tuple(int(v) for v in data["rect"])
            pixels = data["pixels"]
            notes = [str(n) for n in data["notes"]]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        logger.warning("ignoring unreadable segment file %s (%s); it is computed again", path, exc)
        return None
    if rect == (0, 0, 0, 0):
        return SegmentOutput(segment, None, None, notes)
    return SegmentOutput(segment, rect, pixels, notes)  # type: ignore[arg-type]
