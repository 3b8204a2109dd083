"""``run_inpaint``: the staged pipeline over a clip, streamed segment by segment.

The official script keeps every frame, flow and feature of the clip on the device. Here the
clip is cut into segments (``segment_length`` frames each, plus ``segment_padding`` frames of
context on both sides, by the same chunking helper as every stage). Each segment runs
RAFT -> flow completion -> image propagation -> generator on its own frames; only that segment
is on the device, and its owned frames go straight into the preallocated uint8 output. Device
memory therefore depends on the segment, not on the clip length. Neighbouring segments share
``2 * segment_padding`` frames; the RAFT flows of those pairs are handed from one segment to
the next instead of being estimated twice (a flow depends only on its two frames).

A segment whose span covers the whole clip is exactly the official pipeline, so clips no
longer than ``segment_length`` (by default ``subvideo_length``, 80 frames) give the official
result. Longer clips differ from it only inside the dilated hole: a segment sees less temporal
context (flows, propagated pixels and reference frames from beyond its span are missing).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..config import PROPAGATION_PADDING, InpaintSettings
from .cancel import CancelCheck, cancel_checks
from .chunking import Window, overlapping_windows
from .errors import Cancelled, InpaintInputError
from .precision import Precision, cpu_bf16_context, module_in_dtype, resolve_precision
from .prepare import normalise, prepare_segment, processing_size
from .stages import (FlowPair, complete_flows, estimate_flows, generate_and_composite,
                     propagate_images, stage_step_counts)
from .workers import SEQUENTIAL, Workers, WorkersOption, resolve_workers

#: Context frames on each side of a segment when none is given: the official image-propagation
#: padding (inference_propainter.py:376), wider than the generator's half window (5 frames).
DEFAULT_SEGMENT_PADDING = PROPAGATION_PADDING

ProgressCallback = Callable[[int, int], None]
CancelCallback = Callable[[], bool]


class NetworkSet(Protocol):
    """What ``run_inpaint`` needs of :class:`~propainter_core.ProPainterModels`."""

    raft: nn.Module
    flow_completion: nn.Module
    generator: nn.Module
    device: torch.device
    dtype: torch.dtype


class _Ticker:
    """Counts finished chunks for ``progress`` and stops the run when ``should_cancel`` says so."""

    def __init__(self, total: int, progress: ProgressCallback | None,
                 should_cancel: CancelCallback | None) -> None:
        self.total, self.done = total, 0
        self._progress, self._should_cancel = progress, should_cancel

    def check(self) -> None:
        if self._should_cancel is not None and self._should_cancel():
            raise Cancelled(f"inpainting cancelled after {self.done} of {self.total} steps")

    def __call__(self) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)
        self.check()


def plan_segments(num_frames: int, segment_length: int, segment_padding: int) -> list[Window]:
    """The segments of a clip: owned chunks that tile it, each with its context span.

    Consecutive segments with the same span are merged (processing it once), and spans get at
    least 2 frames (RAFT needs a pair).

    Raises:
        InpaintInputError: ``segment_length`` < 1 or ``segment_padding`` < 0.
    """
    if segment_length < 1 or segment_padding < 0:
        raise InpaintInputError(f"segment_length must be >= 1 and segment_padding >= 0, got "
                                f"{segment_length} and {segment_padding}")
    merged: list[Window] = []
    for window in overlapping_windows(num_frames, segment_length, pad_before=segment_padding):
        start = min(window.start, max(0, window.stop - 2))
        if merged and (merged[-1].start, merged[-1].stop) == (start, window.stop):
            merged[-1] = Window(start, window.stop, merged[-1].core_start, window.core_stop)
        else:
            merged.append(Window(start, window.stop, window.core_start, window.core_stop))
    return merged


@dataclass(frozen=True)
class _Networks:
    raft: nn.Module
    flow_completion: nn.Module
    generator: nn.Module
    precision: Precision


def inpaint_segment(original: torch.Tensor, holes: torch.Tensor, networks: _Networks,
                    settings: InpaintSettings, tick: Callable[[], None],
                    known_flows: FlowPair | None = None,
                    cancel: CancelCheck | None = None,
                    workers: Workers = SEQUENTIAL) -> tuple[torch.Tensor, FlowPair]:
    """The official pipeline on one segment.

    Args:
        original: ``[T, h, w, 3]`` uint8 frames at the processing size, on the device.
        holes: ``[T, h, w]`` bool dilated hole masks, on the device.
        known_flows: RAFT flows of the segment's first frame pairs, from the previous segment.
        cancel: raises to stop; polled per frame inside image propagation (the networks are
            watched by :func:`~propainter_core.pipeline.cancel.cancel_checks` around the run).
        workers: run each stage's independent work.

    Returns:
        ``[T, h, w, 3]`` uint8 on the device, and the segment's RAFT flows (fp32, before
        completion; ``[1, T-1, 2, h, w]`` each) for the next segment to reuse.
    """
    frames, masks = normalise(original, holes)
    flows = raft_flows = estimate_flows(networks.raft, frames, settings.raft_iter, tick, known_flows,
                                        workers=workers)
    workers.release_memory()
    dtype = networks.precision.network
    if dtype != frames.dtype:  # parity: inference_propainter.py:333-335
        frames, masks = frames.to(dtype), masks.to(dtype)
        flows = FlowPair(flows.forward.to(dtype), flows.backward.to(dtype))
    flows = complete_flows(networks.flow_completion, flows, masks, settings.subvideo_length, tick,
                           workers=workers)
    workers.release_memory()
    propagated = propagate_images(networks.generator, frames, masks, flows,
                                  settings.subvideo_length, tick, cancel=cancel, workers=workers)
    result = generate_and_composite(networks.generator, propagated, masks, flows, original,
                                    settings, tick, workers=workers)
    workers.release_memory()
    return result, raft_flows


def _check_inputs(frames: torch.Tensor, masks: torch.Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InpaintInputError(f"frames must be uint8 [T, H, W, 3] RGB, got {frames.dtype} "
                                f"{list(frames.shape)}")
    if frames.shape[0] < 2:
        raise InpaintInputError(f"ProPainter needs at least 2 frames (flow runs between frames), "
                                f"got {frames.shape[0]}")
    if masks.ndim != 3 or masks.shape[0] not in (1, frames.shape[0]) or min(masks.shape) < 1:
        raise InpaintInputError(f"masks must be [T, H, W] with T = {frames.shape[0]} (or 1 to use "
                                f"one mask for every frame), got {list(masks.shape)}")


def run_inpaint(frames: torch.Tensor, masks: torch.Tensor, models: NetworkSet,
                settings: InpaintSettings = InpaintSettings(), *, segment_length: int | None = None,
                segment_padding: int | None = None, progress: ProgressCallback | None = None,
                should_cancel: CancelCallback | None = None, cpu_bf16: bool = False,
                workers: WorkersOption = "auto") -> torch.Tensor:
    """Inpaint a clip: every pixel inside the (dilated) mask is filled, the rest kept exactly.

    Args:
        frames: ``[T, H, W, 3]`` uint8 RGB, T >= 2, on any device (kept where it is).
        masks: ``[T, Hm, Wm]`` or ``[1, Hm, Wm]`` (one mask for every frame), any dtype,
            nonzero = remove; resized with nearest neighbour when its size differs.
        models: The three networks with their device and dtype.
        settings: The official options.
        segment_length: Frames owned by each segment; None: ``settings.subvideo_length``.
        segment_padding: Context frames on each side of a segment; None: 10.
        progress: ``progress(done, total)`` after each chunk of each stage.
        should_cancel: Polled after each chunk, before every layer of the networks and per
            frame of image propagation; True raises :class:`Cancelled`.
        cpu_bf16: Opt-in: on a CPU with native bfloat16, run the networks' convolutions and
            matrix products in bfloat16 (about 1.85x less CPU time; not the official arithmetic,
            see :func:`~propainter_core.pipeline.precision.cpu_bf16_context`). Elsewhere one
            warning is logged and the run is the usual one.
        workers: ``"auto"`` (the default): on the CPU, when torch may use 2 threads or more,
            RAFT's encoder calls and refinement batches run on 2 worker threads with half of
            torch's threads each instead of one op after another on all threads, which wastes
            less CPU time waiting (:mod:`~propainter_core.pipeline.workers`); flow completion,
            image propagation and the generator's windows run one at a time at the caller's
            threads. Elsewhere sequential. An int: that many workers (1 = sequential, at torch's
            thread count). The caller's thread count is kept.

    Returns:
        ``[T, h, w, 3]`` uint8 on the CPU at the processing size (multiples of 8).

    Raises:
        InpaintInputError: bad frames, masks, sizes or precision.
        Cancelled: ``should_cancel()`` returned True.
    """
    _check_inputs(frames, masks)
    num_frames, height, width = frames.shape[:3]
    precision = resolve_precision(torch.device(models.device), models.dtype, settings.fp16)
    size = processing_size(settings, height, width)
    networks = _Networks(models.raft, module_in_dtype(models.flow_completion, precision.network),
                         module_in_dtype(models.generator, precision.network), precision)
    segments = plan_segments(num_frames,
                             settings.subvideo_length if segment_length is None else segment_length,
                             DEFAULT_SEGMENT_PADDING if segment_padding is None else segment_padding)
    reused = [0] + [_shared_pairs(before, after) for before, after in zip(segments, segments[1:])]
    total = sum(sum(stage_step_counts(len(s), size[1], settings, r)) for s, r in zip(segments, reused))
    ticker = _Ticker(total, progress, should_cancel)
    output = torch.empty((num_frames, *size, 3), dtype=torch.uint8)
    carried: FlowPair | None = None  # the previous segment's flows over the next one's first pairs
    cancel = ticker.check if should_cancel is not None else None
    watched = (networks.raft, networks.flow_completion, networks.generator)
    autocast = cpu_bf16_context(torch.device(models.device), cpu_bf16)
    pool = Workers(resolve_workers(workers, torch.device(models.device)))
    layer_check = _both(pool.check, cancel) if pool.parallel else cancel
    with torch.no_grad(), cancel_checks(watched, layer_check), autocast, pool:
        for index, segment in enumerate(segments):
            ticker.check()
            segment_masks = masks[segment.span] if masks.shape[0] > 1 else masks.expand(len(segment), -1, -1)
            original, holes = prepare_segment(frames[segment.span], segment_masks, size,
                                              settings.mask_dilation, torch.device(models.device))
            result, raft_flows = inpaint_segment(original, holes, networks, settings, ticker, carried, cancel,
                                                 workers=pool)
            output[segment.core] = result[segment.keep].cpu()
            carried = None
            if index + 1 < len(segments) and reused[index + 1]:
                first = segments[index + 1].start - segment.start  # the next segment's first pair, here
                shared = slice(first, first + reused[index + 1])
                # copies, so that the rest of this segment's flows is freed with it
                carried = FlowPair(raft_flows.forward[:, shared].clone(), raft_flows.backward[:, shared].clone())
            del result, raft_flows
    return output


def _shared_pairs(before: Window, after: Window) -> int:
    """Frame pairs at the start of ``after`` whose RAFT flows ``before`` already estimated."""
    return max(0, before.stop - after.start - 1) if after.start >= before.start else 0


def _both(first: CancelCheck, second: CancelCheck | None) -> CancelCheck:
    """One layer check: the workers' stop (another task failed), then the caller's cancel."""
    if second is None:
        return first

    def check() -> None:
        first()
        second()
    return check
