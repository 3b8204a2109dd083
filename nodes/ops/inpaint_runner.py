"""Run an inpainting backend on a clip: processing size, crop-and-stitch, memory, retries.

ComfyUI-free: the node passes in the device, a free-memory probe, a cache-emptying callable,
progress and cancel callables. Both backends take the same path:

1. **Crop** (optional): the union of the mask over time, plus a context margin, is cut out of
   every frame; only that rectangle is processed, and the caller pastes the result back into
   the untouched original (``CompositeFrames`` with the returned :class:`CropBox`).
2. **Processing size**: the (cropped) frames are scaled by ``scale`` or to ``long_side``, then
   rounded to what the backend needs (ProPainter: multiples of 8, at least 128 per side).
3. **Memory**: ProPainter's working memory is estimated before starting, and the streamed
   segment length is chosen so the estimate fits the free memory. An out-of-memory error still
   raised in a run frees the memory and retries with half the segment; when even the smallest
   segment does not fit, :class:`InpaintMemoryError` says which processing size would.
4. **Back to the original scale**: the result is resized to the crop's original size, and every
   pixel outside the dilated hole is the caller's original value.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from ...propainter_core.config import MIN_SIZE, SIZE_MULTIPLE
from ...propainter_core.ops.morphology import binary_dilation
from ...propainter_core.pipeline.prepare import resize_frames, resize_masks
from ...propainter_core.pipeline.workers import return_freed_memory
from . import flow_fill

logger = logging.getLogger(__name__)

Backend = Literal["propainter", "flow_fill"]
SizeMode = Literal["scale", "long side"]
CropMode = Literal["off", "auto"]

#: "auto" crops only when the rectangle is at most this share of the frame area.
AUTO_CROP_MAX_AREA = 0.5
#: Smallest side the weights-free backend processes (DIS needs a few patches).
FLOW_FILL_MIN_SIZE = 16
#: Shortest segment tried before giving up on out-of-memory (a generator window plus context).
MIN_SEGMENT = 8
#: Share of the free memory a run may plan to use (fragmentation, other tensors).
MEMORY_HEADROOM = 0.8

# ProPainter working-memory model in fp32, fitted to the official README's table
# ("Memory-efficient inference": 320x240 -> 3G/4G, 640x480 -> 10G/12G, 1280x720 -> 28G at 50/80
# frames): a part per pixel of the frame that does not grow with the clip (RAFT's correlation
# volume, the generator's windows) and a part per pixel per frame of the streamed segment.
BYTES_PER_PIXEL = 20_000
BYTES_PER_PIXEL_FRAME = 300
WEIGHT_BYTES = 250 * 1024**2
#: Half precision shrinks the flow-completion and generator parts (official table: 19G vs 28G).
HALF_FACTOR = 0.68


@dataclass(frozen=True)
class RunSettings:
    """What the ProPainter Inpaint node asks for (official names and defaults where they exist)."""

    backend: Backend = "propainter"
    mask_dilation: int = 4
    flow_mask_dilation: int = -1      # -1: the backend's default (ProPainter: = mask_dilation)
    neighbor_length: int = 10
    ref_stride: int = 10
    subvideo_length: int = 80
    raft_iter: int = 20
    size_mode: SizeMode = "scale"
    scale: float = 1.0
    long_side: int = 960
    crop: CropMode = "off"
    crop_margin: int = 64
    segment_length: int = 0           # 0: choose from free memory
    half: bool = False                # ProPainter networks run in fp16/bf16 (models' dtype)
    cpu_bf16: bool = False            # ProPainter on the CPU under bfloat16 autocast (opt-in)
    flow_fill_second_draw: bool = True  # flow_fill: the mean of two fills (False: one, half the time)


@dataclass(frozen=True)
class CropBox:
    """The processed rectangle in original pixels (the whole frame when not cropping)."""

    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        """The ``VANISH_CROP`` value CompositeFrames reads."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


@dataclass
class RunResult:
    """Result of :func:`run_inpaint`.

    Attributes:
        filled: ``[T, h, w, 3]`` float32 0..1 on the CPU at the crop's original size; equal to
            the given frames wherever ``mask_used`` is False. A :class:`FrameRestorer` (indexed
            frame by frame, same values) when ``run_inpaint`` was called with ``lazy=True``.
        mask_used: ``[T, H, W]`` bool at the full frame size: the dilated hole that was filled
            (None with ``lazy=True``).
        crop: where ``filled`` belongs in the full frame.
        processing_size: ``(h, w)`` the backend ran at.
        segment_length: the streamed segment length of the final (successful) attempt.
    """

    filled: torch.Tensor | FrameRestorer
    mask_used: torch.Tensor | None
    crop: CropBox
    processing_size: tuple[int, int]
    segment_length: int
    notes: list[str] = field(default_factory=list)


class InpaintMemoryError(RuntimeError):
    """The clip does not fit in memory even with the smallest segment; the text says what would."""


# --------------------------------------------------------------------------- geometry
def crop_box(masks: torch.Tensor, mode: CropMode, margin: int, min_side: int) -> CropBox:
    """The rectangle to process: the mask's extent over all frames plus ``margin`` pixels.

    Args:
        masks: ``[T, H, W]`` bool.
        mode: "off" gives the whole frame; "auto" crops when the rectangle is at most
            :data:`AUTO_CROP_MAX_AREA` of the frame.
        min_side: the rectangle is grown (centred, clipped to the frame) to at least this.
    """
    height, width = masks.shape[1:]
    whole = CropBox(0, 0, width, height)
    if mode == "off" or not bool(masks.any()):
        return whole
    extent = masks.any(dim=0)  # [H, W]
    rows = torch.nonzero(extent.any(dim=1))[:, 0]
    cols = torch.nonzero(extent.any(dim=0))[:, 0]
    y0, y1 = _grow(int(rows[0]) - margin, int(rows[-1]) + 1 + margin, min_side, height)
    x0, x1 = _grow(int(cols[0]) - margin, int(cols[-1]) + 1 + margin, min_side, width)
    box = CropBox(x0, y0, x1 - x0, y1 - y0)
    if box.width * box.height > AUTO_CROP_MAX_AREA * width * height:
        return whole
    return box


def _grow(start: int, stop: int, min_len: int, limit: int) -> tuple[int, int]:
    """Clip ``[start, stop)`` to ``[0, limit)`` after widening it (centred) to ``min_len``."""
    missing = max(0, min(min_len, limit) - (stop - start))
    start, stop = start - missing // 2, stop + missing - missing // 2
    if start < 0:
        start, stop = 0, stop - start
    if stop > limit:
        start, stop = max(0, start - (stop - limit)), limit
    return max(0, start), min(limit, stop)


def processing_size(height: int, width: int, settings: RunSettings) -> tuple[int, int]:
    """``(h, w)`` the backend runs at for a ``height x width`` input (or crop).

    ``scale`` multiplies both sides; ``long side`` scales the longer side to ``long_side``.
    ProPainter: rounded to the nearest multiple of 8 and at least 128 per side (the aspect is
    kept by scaling up a side that would fall below); flow_fill: rounded to whole pixels, >= 16.
    """
    factor = settings.scale if settings.size_mode == "scale" else settings.long_side / max(height, width)
    multiple, minimum = (SIZE_MULTIPLE, MIN_SIZE) if settings.backend == "propainter" else (1, FLOW_FILL_MIN_SIZE)
    factor = max(factor, minimum / min(height, width))
    h = max(minimum, int(round(height * factor / multiple)) * multiple)
    w = max(minimum, int(round(width * factor / multiple)) * multiple)
    return h, w


# --------------------------------------------------------------------------- memory
def estimate_bytes(size: tuple[int, int], segment_frames: int, half: bool = False) -> int:
    """Estimated peak device memory of one ProPainter segment of ``segment_frames`` frames."""
    pixels = size[0] * size[1]
    working = BYTES_PER_PIXEL * pixels + BYTES_PER_PIXEL_FRAME * pixels * segment_frames
    return int(WEIGHT_BYTES + working * (HALF_FACTOR if half else 1.0))


def choose_segment(size: tuple[int, int], free_bytes: int, requested: int, total_frames: int,
                   padding: int, half: bool = False) -> int:
    """Longest segment (owned frames) not above ``requested`` whose estimate fits the free memory."""
    def need(segment: int) -> int:
        return estimate_bytes(size, segment + 2 * padding, half)

    return _halved_to_fit(min(requested, total_frames), need, free_bytes * MEMORY_HEADROOM)


def _halved_to_fit(segment: int, need: Callable[[int], int], budget: float) -> int:
    """``segment`` halved until ``need(segment)`` fits ``budget``, but not below :data:`MIN_SEGMENT`."""
    while segment > MIN_SEGMENT and need(segment) > budget:
        segment = max(MIN_SEGMENT, segment // 2)
    return segment


def _shrunk(size: tuple[int, int], factor: float, minimum: int) -> tuple[int, int]:
    """``size`` (h, w) scaled by ``factor`` (at most 1), in multiples of :data:`SIZE_MULTIPLE`, no side
    below ``minimum``."""
    factor = min(1.0, factor)
    return (max(minimum, int(size[0] * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE),
            max(minimum, int(size[1] * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE))


def size_that_fits(size: tuple[int, int], free_bytes: int, half: bool = False) -> tuple[int, int]:
    """The largest processing size (same aspect, multiples of 8) whose smallest segment fits."""
    per_pixel = (BYTES_PER_PIXEL + BYTES_PER_PIXEL_FRAME * (MIN_SEGMENT + 20)) * (HALF_FACTOR if half else 1.0)
    pixels = max(0.0, free_bytes * MEMORY_HEADROOM - WEIGHT_BYTES) / per_pixel
    return _shrunk(size, math.sqrt(pixels / (size[0] * size[1])), SIZE_MULTIPLE)


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors and the CPU allocator's failure."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(error, MemoryError))


# --------------------------------------------------------------------------- running
@dataclass
class Host:
    """What the runner needs from its caller (ComfyUI's model management, or a script)."""

    free_memory: Callable[[], int] = lambda: 8 * 1024**3
    empty_cache: Callable[[], None] = lambda: None
    progress: Callable[[int, int], None] | None = None
    should_cancel: Callable[[], bool] | None = None


ALL_MASKED_WARNING = ("the mask covers every pixel of every frame: there is nothing to propagate, "
                      "so the result is a flat grey spatial fill. Check the mask (is it inverted?).")


def run_inpaint(images: torch.Tensor, masks: torch.Tensor, settings: RunSettings, models: Any = None,
                host: Host | None = None, keep: slice | None = None, lazy: bool = False) -> RunResult:
    """Inpaint ``masks`` out of ``images`` with the chosen backend.

    Args:
        images: ``[T, H, W, 3]`` float 0..1, or uint8 0..255 (any device; read crop by crop).
        masks: ``[T, H, W]`` bool (True = remove), same T, H, W.
        settings: see :class:`RunSettings`.
        models: ``propainter_core.ProPainterModels`` for the ProPainter backend, else unused.
        host: memory probe, cache release, progress and cancel callables.
        keep: the frames to return (a streamed segment's owned frames; its context frames are
            inpainted too but not scaled back); None returns every frame.
        lazy: return the fill as a :class:`FrameRestorer` that scales each frame back when it is
            indexed (``mask_used`` is then None); the streaming engine's segments use it.
    Raises:
        InpaintMemoryError: nothing fits, with the size that would.
        propainter_core.Cancelled / flow_fill.InpaintCancelled: the user cancelled.
        propainter_core.InpaintInputError: the core refused the input.
    """
    host = host or Host()
    min_side = MIN_SIZE if settings.backend == "propainter" else FLOW_FILL_MIN_SIZE
    box = crop_box(masks, settings.crop, settings.crop_margin, min_side)
    rows, cols = box.slices()
    crop_images, crop_masks = images[:, rows, cols], masks[:, rows, cols]
    size = processing_size(box.height, box.width, settings)
    notes: list[str] = []
    if settings.backend == "propainter":
        refuse_if_too_big(size, host.free_memory(), settings.half)
    else:  # before anything is allocated, like ProPainter's refusal
        requested = flow_fill_settings(settings)
        planned = plan_flow_fill(size, masks.shape[0], host.free_memory(), requested)
        if planned.segment_length < min(requested.segment_length, masks.shape[0]):
            notes.append(f"flow_fill streams in segments of {planned.segment_length} frames "
                         f"(instead of {requested.segment_length}) to fit the free memory")
    frames = to_uint8(crop_images)  # [T, h0, w0, 3]
    segment = settings.segment_length or settings.subvideo_length
    if bool(crop_masks.all()):
        notes.append(ALL_MASKED_WARNING)
        result = torch.full((frames.shape[0], *size, 3), 128, dtype=torch.uint8)
        holes = torch.ones((frames.shape[0], *size), dtype=torch.bool)
    elif settings.backend == "propainter":
        result, holes, segment = _run_propainter(frames, crop_masks.cpu(), size, settings, models, host, notes)
    else:
        result, holes = _run_flow_fill(frames, crop_masks.cpu(), size, planned, host)
        segment = planned.segment_length
    keep = keep if keep is not None else slice(None)
    restorer = FrameRestorer(result[keep], holes[keep], crop_images[keep], crop_masks[keep], host.should_cancel)
    if lazy:
        return RunResult(restorer, None, box, size, segment, notes)
    # The backend's working arrays are freed by now, but glibc keeps most of them (flow_fill's window:
    # tens of bytes a pixel a frame); the clip's float32 output came on top of them (flow_fill, 400
    # frames at 192x128: peak 284 MiB, 200 MiB with them handed back).
    return_freed_memory()
    filled, used = _restore(restorer)
    mask_used = used  # the whole frame was processed: no second clip-sized mask
    if tuple(used.shape[1:]) != tuple(masks.shape[1:]):
        mask_used = torch.zeros((used.shape[0], *masks.shape[1:]), dtype=torch.bool)
        mask_used[:, rows, cols] = used
    return RunResult(filled, mask_used, box, size, segment, notes)


# to_uint8 converts this many frames at a time.
_CONVERT_FRAMES = 8


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, 3]`` float 0..1 (any device) as uint8 0..255 on the CPU; uint8 frames as they are.

    A few frames at a time: converting the clip in one expression made two float32 temporaries
    of the whole clip at once (24 bytes per pixel per frame; for 300 frames of 1080p, 15 GB
    beside ComfyUI's own IMAGE).
    """
    if images.dtype == torch.uint8:  # the streaming engine hands over decoded frames as they are
        return images.cpu()
    out = torch.empty(images.shape, dtype=torch.uint8)
    for first in range(0, images.shape[0], _CONVERT_FRAMES):
        chunk = images[first:first + _CONVERT_FRAMES].detach().float()
        out[first:first + chunk.shape[0]] = (chunk.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    return out


def _run_propainter(frames: torch.Tensor, masks: torch.Tensor, size: tuple[int, int], settings: RunSettings,
                    models: Any, host: Host, notes: list[str]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """ProPainter at ``size`` with memory-aware segments and out-of-memory retries."""
    from ...propainter_core import inpaint
    from ...propainter_core.pipeline.run import DEFAULT_SEGMENT_PADDING

    single = frames.shape[0] == 1
    if single:  # the networks need a pair: a still pair has zero flow, the generator fills alone
        frames, masks = frames.expand(2, -1, -1, -1), masks.expand(2, -1, -1)
    total = frames.shape[0]
    explicit = tuple(frames.shape[1:3]) != size
    if settings.flow_mask_dilation >= 0 and settings.flow_mask_dilation != settings.mask_dilation:
        notes.append("flow_mask_dilation is ignored by ProPainter: as in the official pipeline, "
                     "mask_dilation sets both the hole and the flow mask")
    requested = settings.segment_length or settings.subvideo_length
    segment = choose_segment(size, host.free_memory(), requested, total, DEFAULT_SEGMENT_PADDING, settings.half)
    if segment < min(requested, total):
        notes.append(f"streaming in segments of {segment} frames to fit the free memory")
    while True:
        failed = False
        try:
            result = inpaint(frames, masks, models, mask_dilation=settings.mask_dilation,
                             ref_stride=settings.ref_stride, neighbor_length=settings.neighbor_length,
                             subvideo_length=settings.subvideo_length, raft_iter=settings.raft_iter,
                             height=size[0] if explicit else -1, width=size[1] if explicit else -1,
                             progress=host.progress, should_cancel=host.should_cancel,
                             segment_length=segment, cpu_bf16=settings.cpu_bf16)
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error):
                raise
            failed = True
        if not failed:
            break
        host.empty_cache()  # the failed attempt's tensors are gone with its frames
        if segment <= MIN_SEGMENT:
            raise InpaintMemoryError(_memory_message(size, segment, host.free_memory(), settings.half))
        segment = max(MIN_SEGMENT, segment // 2)
        logger.warning("out of memory; retrying with segments of %d frames", segment)
        notes.append(f"ran out of memory once; retried with segments of {segment} frames")
    holes = binary_dilation(resize_masks(masks, size), settings.mask_dilation)
    if single:
        result, holes = result[:1], holes[:1]
    return result, holes, segment


def refuse_if_too_big(size: tuple[int, int], free: int, half: bool = False) -> None:
    """Refuse before anything big is allocated when even the smallest segment cannot fit.

    The estimate is known before the run starts; without this check a 5000x5000 frame ran for a
    minute, growing to gigabytes, until an allocation failed.

    Raises:
        InpaintMemoryError: the estimate at the smallest segment exceeds the free memory; the
            text gives the estimate, the free memory and the processing size that would fit.
    """
    from ...propainter_core.pipeline.run import DEFAULT_SEGMENT_PADDING

    need = estimate_bytes(size, MIN_SEGMENT + 2 * DEFAULT_SEGMENT_PADDING, half)
    if need <= free * MEMORY_HEADROOM:
        return
    fits = size_that_fits(size, free, half)
    raise InpaintMemoryError(
        f"ProPainter at {size[1]}x{size[0]} would need about {need / 1024**3:.1f} GiB even with the smallest "
        f"segment ({MIN_SEGMENT} frames), but only {free / 1024**3:.1f} GiB are free; refused before starting. "
        f"A processing size of about {fits[1]}x{fits[0]} would fit: set size_mode to 'long side' with "
        f"long_side {max(fits)} (or lower 'scale'), use crop 'auto' for a small object, or fp16 on a GPU.")


def _memory_message(size: tuple[int, int], segment: int, free: int, half: bool) -> str:
    need = estimate_bytes(size, segment + 20, half)
    fits = size_that_fits(size, free, half)
    return (f"ProPainter ran out of memory at {size[1]}x{size[0]} even with segments of {segment} frames "
            f"(estimated need {need / 1024**3:.1f} GiB, {free / 1024**3:.1f} GiB free). A processing size of "
            f"about {fits[1]}x{fits[0]} would fit: set size_mode to 'long side' with long_side "
            f"{max(fits)}, use crop 'auto' for a small object, or fp16 on a GPU.")


def flow_fill_settings(settings: RunSettings) -> flow_fill.FlowFillSettings:
    """The weights-free backend's settings for the node's ``settings`` (before fitting them to the memory)."""
    defaults = flow_fill.FlowFillSettings()
    flow_dilation = settings.flow_mask_dilation
    return replace(defaults, mask_dilation=settings.mask_dilation,
                   flow_mask_dilation=defaults.flow_mask_dilation if flow_dilation < 0 else flow_dilation,
                   segment_length=settings.segment_length or defaults.segment_length,
                   second_draw=settings.flow_fill_second_draw)


def _run_flow_fill(frames: torch.Tensor, masks: torch.Tensor, size: tuple[int, int],
                   planned: flow_fill.FlowFillSettings, host: Host) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights-free backend at ``size`` with the ``planned`` settings (see :func:`plan_flow_fill`)."""
    small = resize_frames(frames, size).numpy()
    holes_raw = resize_masks(masks, size).numpy()
    result = flow_fill.flow_fill_inpaint(small, holes_raw, planned, progress=host.progress,
                                         should_cancel=host.should_cancel)
    holes = flow_fill.dilate_holes(holes_raw, planned.mask_dilation)
    return torch.from_numpy(result), torch.from_numpy(holes)


# Per pixel per frame of the clip, besides flow_fill's own working memory: the frames resized to
# the processing size, their masks and the dilated holes.
_FLOW_FILL_RUNNER_BYTES = 5


def flow_fill_bytes(size: tuple[int, int], frames: int, settings: flow_fill.FlowFillSettings) -> int:
    """Estimated peak memory of :func:`_run_flow_fill` over ``frames`` frames at ``size`` (besides its input)."""
    return (flow_fill.working_bytes(size[0], size[1], frames, settings)
            + _FLOW_FILL_RUNNER_BYTES * size[0] * size[1] * frames)


def plan_flow_fill(size: tuple[int, int], frames: int, free: int,
                   requested: flow_fill.FlowFillSettings) -> flow_fill.FlowFillSettings:
    """``requested`` with a segment short enough that a window of ``frames`` at ``size`` fits ``free`` bytes.

    The segment halves down to :data:`MIN_SEGMENT` frames; a window keeps its context either side
    (``max_propagation``: how far a pixel looks), so at a large processing size even the shortest
    does not fit, and the run is refused before anything is allocated (a window of 120 full 1080p
    frames holds about 15 GB; over the free RAM the system swaps or kills the process).

    Raises:
        InpaintMemoryError: even the shortest segment does not fit; the text gives the estimate,
            the free memory and a processing size that would fit.
    """
    budget = free * MEMORY_HEADROOM
    segment = _halved_to_fit(requested.segment_length,
                             lambda length: flow_fill_bytes(size, frames, replace(requested, segment_length=length)),
                             budget)
    planned = replace(requested, segment_length=segment)
    need = flow_fill_bytes(size, frames, planned)
    if need <= budget:
        return planned
    fits = _shrunk(size, math.sqrt(budget / need), FLOW_FILL_MIN_SIZE)  # the need grows with the pixels
    raise InpaintMemoryError(
        f"flow_fill (no weights) at {size[1]}x{size[0]} would need about {need / 1024**3:.1f} GiB of RAM for "
        f"{frames} frames even in segments of {segment} frames (each window also holds "
        f"{requested.max_propagation} frames either side), but only {free / 1024**3:.1f} GiB are free; refused "
        f"before starting. A processing size of about {fits[1]}x{fits[0]} would fit: set size_mode to 'long side' "
        f"with long_side {max(fits)} (or lower 'scale'), use crop 'auto' for a small object, or a shorter clip.")


class FrameRestorer:
    """The fill of each frame back at the crop's original size, one frame at a time.

    Indexing (``restorer[i]``) gives frame ``i`` as ``[H, W, 3]`` float32 0..1 on the CPU: the
    backend's result scaled back (bicubic, antialiased) inside the hole it covered and the original
    values everywhere else. The streaming engine composites frame by frame from this, so a
    segment never holds its fill as a float32 clip (60 1080p frames would be 1.5 GB).

    Args:
        result: ``[T, h, w, 3]`` uint8. holes: ``[T, h, w]`` bool (processing size).
        original: ``[T, H, W, 3]`` float 0..1 or uint8 (the crop). masks: ``[T, H, W]`` bool.
    """

    def __init__(self, result: torch.Tensor, holes: torch.Tensor, original: torch.Tensor, masks: torch.Tensor,
                 should_cancel: Callable[[], bool] | None = None):
        self.result, self.holes, self.original, self.masks = result, holes, original, masks
        self.should_cancel = should_cancel
        self.size = tuple(masks.shape[1:])

    def __len__(self) -> int:
        return self.masks.shape[0]

    def used(self, i: int) -> torch.Tensor:
        """``[H, W]`` bool: the hole frame ``i``'s fill covers (the backend's dilated hole or the mask)."""
        return resize_masks(self.holes[i:i + 1], self.size)[0] | self.masks[i].cpu()

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.fill(i, self.used(i))

    def fill(self, i: int, used: torch.Tensor) -> torch.Tensor:
        """Frame ``i`` given its :meth:`used` hole (for callers that keep that too)."""
        if self.should_cancel is not None and self.should_cancel():
            from ...propainter_core import Cancelled

            raise Cancelled(f"cancelled while restoring frame {i} of {len(self)}")
        height, width = self.size
        frame = self.result[i].float() / 255.0  # [h, w, 3]
        if tuple(frame.shape[:2]) != (height, width):
            planar = frame.permute(2, 0, 1).unsqueeze(0)  # [1, 3, h, w]
            planar = F.interpolate(planar, size=(height, width), mode="bicubic", align_corners=False,
                                   antialias=True)
            frame = planar[0].permute(1, 2, 0).clamp(0.0, 1.0)  # [H, W, 3]
        source = self.original[i].detach().cpu().float()
        if self.original.dtype == torch.uint8:
            source = source / 255.0  # the float IMAGE value of the same pixel
        return torch.where(used.unsqueeze(-1), frame, source)


def _restore(restorer: FrameRestorer) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of ``restorer`` at once: ``([T, H, W, 3]`` float32 CPU, ``[T, H, W]`` bool)."""
    t, (height, width) = len(restorer), restorer.size
    filled = torch.empty((t, height, width, 3), dtype=torch.float32)
    used = torch.empty((t, height, width), dtype=torch.bool)
    for i in range(t):
        used[i] = restorer.used(i)
        filled[i] = restorer.fill(i, used[i])
    return filled, used
