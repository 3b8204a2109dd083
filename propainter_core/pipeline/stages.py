"""The four stages of ProPainter on one segment of a clip, each chunked with the one helper.

All tensors live on the networks' device. ``B`` is always 1 here (one clip), ``T`` the
segment's frames, ``h, w`` the processing size. Each function follows the official script's
arithmetic step for step (``# parity:`` notes give the lines of ``inference_propainter.py``),
so that a segment covering the whole clip reproduces the official output.
"""
from __future__ import annotations

from collections.abc import Callable
import threading
from typing import NamedTuple

import torch
from torch import nn

from ..config import (FLOW_COMPLETION_PADDING, PROPAGATION_MAX_CHUNK, PROPAGATION_PADDING,
                      InpaintSettings, raft_clip_length)
from ..flow_completion import FlowPair, combine_flows
from ..raft import RaftConfig, bidirectional_flow
from .chunking import neighbour_windows, overlapping_windows, raft_clip_windows
from .references import local_reference_count, reference_frames
from .workers import SEQUENTIAL, Workers

#: Called between chunks: raises ``Cancelled`` when asked to stop, then counts one step.
Tick = Callable[[], None]

#: RAFT refines at most this many correlation entries (``(h/8 * w/8)^2`` per frame pair) in one
#: batch: 512 MiB in fp32. Small frames still batch a whole clip; at 960x540 that is 2 pairs, at
#: 1280x720 one. Each batch builds its correlation volumes in one uninterruptible matrix product,
#: so this bounds how long a cancel waits (and the peak memory); the flows do not depend on it.
RAFT_CORRELATION_BUDGET = 2**27

#: RAFT's per-iteration buffers grow with the batch (the largest, the correlation look-up, holds
#: ``corr_channels`` (324) floats per 1/8-grid pixel and pair). glibc serves a buffer above its
#: largest mmap threshold (32 MiB on 64-bit Linux) by mapping fresh pages at every allocation and
#: unmapping them at free, a page fault per 4 KiB each time; below it, freed memory is reused.
#: So a batch keeps that buffer under 32 MiB: at 432x240 the 22 pairs of a 12-frame clip run as
#: 2 x 11 instead of 1 x 22, measured 13 % less CPU time in the refinement (system time 2.0 ->
#: 0.4 s and 1.0 M -> 0.2 M page faults per 6 iterations, same user time; issue 14, session 4).
RAFT_ITERATION_BUFFER_BYTES = 32 * 2**20


#: Generator windows run one at a time (inline, at the caller's threads), not one per worker: two
#: windows at once raised the peak RSS of 20 frames at 432x240 from 1.93 to 2.24 GB (0.65x the
#: official run; the goal is <= 0.6x) for little CPU time saved (issue 14, session 5).
#: The windows are independent, and :class:`EncodedFrames` serves them in order from any thread,
#: so a larger value runs them at once with the same output.
GENERATOR_WINDOWS_AT_ONCE = 1


class Propagated(NamedTuple):
    """Image propagation's result.

    Attributes:
        frames: ``[B, T, 3, h, w]`` in -1..1: known pixels, and propagated ones inside the hole.
        masks: ``[B, T, 1, h, w]`` in {0, 1}: the hole that propagation could not fill.
    """

    frames: torch.Tensor
    masks: torch.Tensor


def stage_step_counts(num_frames: int, width: int, settings: InpaintSettings,
                      reused_flows: int = 0) -> tuple[int, int, int, int]:
    """How many chunks each stage runs on a segment of ``num_frames`` frames (for progress),
    when its first ``reused_flows`` flow pairs come from the previous segment."""
    sub = settings.subvideo_length
    fresh = num_frames - reused_flows
    return (len(raft_clip_windows(fresh, raft_clip_length(width))) if fresh >= 2 else 0,
            len(overlapping_windows(num_frames - 1, sub, pad_before=FLOW_COMPLETION_PADDING)),
            len(overlapping_windows(num_frames, min(PROPAGATION_MAX_CHUNK, sub),
                                    pad_before=PROPAGATION_PADDING)),
            len(neighbour_windows(num_frames, settings.neighbor_length)))


def estimate_flows(raft: nn.Module, frames: torch.Tensor, iters: int, tick: Tick,
                   known: FlowPair | None = None, *, workers: Workers = SEQUENTIAL) -> FlowPair:
    """RAFT flows between neighbouring frames, in clips sharing one frame.

    Args:
        frames: ``[B, T, 3, h, w]`` float32 in -1..1.
        known: flows of the first ``k`` frame pairs, already estimated (the previous segment's
            overlap): only the pairs after them are run. A flow depends only on its two frames,
            so this changes results by float jitter at most.
        workers: run each clip's encoder calls and refinement batches.

    parity: inference_propainter.py:302-329 (clip length by width, ``f-1`` overlap, fp32).
    """
    forward = [known.forward] if known is not None else []
    backward = [known.backward] if known is not None else []
    reused = known.forward.shape[1] if known is not None else 0
    if reused >= frames.shape[1] - 1:
        return FlowPair(known.forward[:, :frames.shape[1] - 1], known.backward[:, :frames.shape[1] - 1])
    frames = frames[:, reused:]  # pair `reused` onwards: frames `reused` .. T-1
    grid = (frames.shape[-2] // 8) * (frames.shape[-1] // 8)
    lookup_bytes = RaftConfig().corr_channels * grid * 4  # one pair's float32 look-up
    max_pairs = max(1, min(RAFT_CORRELATION_BUDGET // max(1, grid * grid),
                           (RAFT_ITERATION_BUFFER_BYTES - 1) // max(1, lookup_bytes)))
    for window in raft_clip_windows(frames.shape[1], raft_clip_length(frames.shape[-1])):
        flows_f, flows_b = bidirectional_flow(raft, frames[:, window.span], iters=iters,
                                              max_pairs=max_pairs, mapper=workers.map)
        forward.append(flows_f)
        backward.append(flows_b)
        tick()
    return FlowPair(torch.cat(forward, dim=1), torch.cat(backward, dim=1))


def complete_flows(flow_completion: nn.Module, flows: FlowPair, flow_masks: torch.Tensor,
                   subvideo_length: int, tick: Tick, *, workers: Workers = SEQUENTIAL) -> FlowPair:
    """Fill the flows inside the hole, in sub-videos of ``subvideo_length`` flows.

    Args:
        flows: RAFT flows, ``[B, T-1, 2, h, w]`` each.
        flow_masks: ``[B, T, 1, h, w]`` in {0, 1}; flow t is masked with frames t / t+1.
        workers: each sub-video runs alone (inline, at the caller's threads), its two directions
            one after the other: run at once, the two directions' activations doubled the peak
            RSS of the whole pipeline (20 frames at 432x240: 1.66 -> 3.16 GB).

    Returns:
        The completed flows: predictions inside the hole, RAFT's outside.

    parity: inference_propainter.py:341-367 (5 flows of context, masks ``s_f:e_f+1``).
    """
    forward, backward = [], []
    windows = overlapping_windows(flows.forward.shape[1], subvideo_length,
                                  pad_before=FLOW_COMPLETION_PADDING)
    for window in windows:
        sub_f, sub_b = flows.forward[:, window.span], flows.backward[:, window.span]
        sub_masks = flow_masks[:, window.start:window.stop + 1]
        pred_f, pred_b = workers.call(lambda: flow_completion.complete_bidirectional(sub_f, sub_b, sub_masks))
        comp_f, comp_b = combine_flows(sub_f, sub_b, pred_f, pred_b, sub_masks)
        forward.append(comp_f[:, window.keep])
        backward.append(comp_b[:, window.keep])
        tick()
    return FlowPair(torch.cat(forward, dim=1), torch.cat(backward, dim=1))


def propagate_images(generator: nn.Module, frames: torch.Tensor, masks: torch.Tensor,
                     flows: FlowPair, subvideo_length: int, tick: Tick, *,
                     cancel: Callable[[], None] | None = None, workers: Workers = SEQUENTIAL) -> Propagated:
    """Carry known pixels along the completed flows into the hole, in chunks of frames.

    Args:
        frames: ``[B, T, 3, h, w]`` in -1..1.
        masks: ``[B, T, 1, h, w]`` dilated hole masks in {0, 1}.
        flows: Completed flows.
        cancel: raises to stop; polled before every frame step of the propagation.
        workers: each chunk runs alone (inline, at the caller's threads).

    parity: inference_propainter.py:371-404 (chunks of ``min(100, subvideo_length)`` frames
    with 10 of context, ``'nearest'`` warps, ``frames * (1 - m) + prop * m``).
    """
    batch, num_frames, _, height, width = frames.shape
    masked_frames = frames * (1 - masks)
    chunk = min(PROPAGATION_MAX_CHUNK, subvideo_length)
    updated_frames, updated_masks = [], []
    for window in overlapping_windows(num_frames, chunk, pad_before=PROPAGATION_PADDING):
        span, flow_span = window.span, slice(window.start, window.stop - 1)
        count = len(window)
        prop, holes = workers.call(lambda: generator.img_propagation(
            masked_frames[:, span], (flows.forward[:, flow_span], flows.backward[:, flow_span]),
            masks[:, span], interpolation="nearest", cancel=cancel))
        prop = prop.reshape(batch, count, 3, height, width)  # [B, t, 3, h, w]
        merged = frames[:, span] * (1 - masks[:, span]) + prop * masks[:, span]
        updated_frames.append(merged[:, window.keep])
        updated_masks.append(holes.reshape(batch, count, 1, height, width)[:, window.keep])  # [B, t, 1, h, w]
        tick()
    return Propagated(torch.cat(updated_frames, dim=1), torch.cat(updated_masks, dim=1))


def to_uint8_frames(generated: torch.Tensor) -> torch.Tensor:
    """Generator output in -1..1 to uint8 pixels, truncating as the script does.

    Args:
        generated: ``[L, 3, h, w]`` tanh output (float32, or the half dtype it ran in).

    Returns:
        ``[L, h, w, 3]`` uint8.

    parity: inference_propainter.py:437-443: ``(x + 1) / 2`` in the network's dtype, ``* 255``
    in that dtype (numpy), then ``astype(np.uint8)``, which truncates toward zero. bfloat16
    (which the script never uses) is widened to float32 first: its 8-bit mantissa cannot hold
    256 levels.
    """
    if generated.dtype == torch.bfloat16:
        generated = generated.float()
    scaled = (generated + 1) / 2 * 255
    return scaled.permute(0, 2, 3, 1).to(torch.uint8)  # [L, h, w, 3]


class EncodedFrames:
    """The generator encoder's features of a segment's frames, each frame encoded once.

    The neighbour windows overlap and share reference frames, so the official pipeline encodes
    most frames two or more times; a frame's features depend only on that frame and its two
    masks, so every window can reuse them. A frame's features are computed when a window first
    needs them and dropped after the last window that uses it.

    Windows may run on two workers at once: :meth:`take` serves them in the order of ``step``
    (a window waits until the one before it took its features), so every frame is encoded once
    and dropped only after its last window took it, as in a sequential run.

    Args:
        generator: The InpaintGenerator.
        propagated: Image propagation's frames and remaining holes ``[B, T, ., h, w]``.
        masks: ``[B, T, 1, h, w]`` dilated hole masks.
        frame_ids: The frames of each window (local, then references), in the order of use.
        stop: raises while a window waits for its turn if the run failed elsewhere.
    """

    def __init__(self, generator: nn.Module, propagated: Propagated, masks: torch.Tensor,
                 frame_ids: list[list[int]], stop: Callable[[], None] = lambda: None) -> None:
        self._generator, self._propagated, self._masks = generator, propagated, masks
        self._last_use = {frame: step for step, ids in enumerate(frame_ids) for frame in ids}
        self._features: dict[int, torch.Tensor] = {}
        self._turn, self._stop = 0, stop
        self._ready = threading.Condition()

    def take(self, step: int, ids: list[int]) -> torch.Tensor | None:
        """Features ``[B, len(ids), C, h/4, w/4]`` of window ``step`` (frames ``ids``).

        Every window must call this once, in any thread, with ``ids`` empty (None returned) if
        it needs no features; the calls are served in increasing ``step``. Features no later
        window needs are dropped.
        """
        with self._ready:
            while self._turn < step:
                self._stop()
                self._ready.wait(0.05)
            try:
                return self._take(step, ids)
            finally:
                self._turn = step + 1
                self._ready.notify_all()

    def _take(self, step: int, ids: list[int]) -> torch.Tensor | None:
        for frame in [f for f in self._features if self._last_use[f] < step]:
            del self._features[frame]
        missing = [frame for frame in dict.fromkeys(ids) if frame not in self._features]
        if missing:
            new = self._generator.encode(self._propagated.frames[:, missing], self._masks[:, missing],
                                         self._propagated.masks[:, missing])  # [B, m, C, h, w]
            self._features.update(zip(missing, new.unbind(1)))
        features = torch.stack([self._features[frame] for frame in ids], dim=1) if ids else None  # [B, n, C, h, w]
        for frame in [f for f in self._features if self._last_use[f] <= step]:
            del self._features[frame]
        return features


def generate_and_composite(generator: nn.Module, propagated: Propagated, masks: torch.Tensor,
                           flows: FlowPair, original: torch.Tensor, settings: InpaintSettings,
                           tick: Tick, *, workers: Workers = SEQUENTIAL) -> torch.Tensor:
    """Run the generator over overlapping neighbour windows and composite into uint8 frames.

    Args:
        propagated: Image propagation's frames and remaining holes.
        masks: ``[B, T, 1, h, w]`` dilated hole masks in {0, 1}.
        flows: Completed flows.
        original: ``[T, h, w, 3]`` uint8 frames at the processing size.
        workers: run the windows, :data:`GENERATOR_WINDOWS_AT_ONCE` at a time (each window's
            generator pass is independent of the others'; the windows are averaged into the
            result in their order, here).

    Returns:
        ``[T, h, w, 3]`` uint8: generated pixels inside the dilated hole, ``original`` outside;
        frames in several windows are averaged window by window, truncating to uint8.

    parity: inference_propainter.py:407-452 (windows every ``neighbor_length // 2`` frames,
    references, ``l_t`` local frames, ``comp * 0.5 + img * 0.5`` then ``astype(np.uint8)``).
    """
    num_frames = original.shape[0]
    ref_count = local_reference_count(num_frames, settings.subvideo_length, settings.ref_stride)
    result = original.clone()
    written = torch.zeros(num_frames, dtype=torch.bool)
    holes = masks[0, :, 0].to(torch.bool).unsqueeze(-1)  # [T, h, w, 1]
    windows = neighbour_windows(num_frames, settings.neighbor_length)
    frame_ids = [window.indices + reference_frames(window.core_start, window.indices, num_frames,
                                                   settings.ref_stride, ref_count)
                 for window in windows]
    encoded = EncodedFrames(generator, propagated, masks, frame_ids, stop=workers.check)

    def composite(step: int) -> torch.Tensor:
        """Window ``step``'s frames: generated inside the hole, ``original`` outside, ``[L, h, w, 3]``."""
        window, ids = windows[step], frame_ids[step]
        local = window.indices
        if not holes[window.span].any():
            # No hole in the local frames: the generator's pixels would all be discarded below.
            encoded.take(step, [])
            return original[window.span]
        # Local frames without a hole are not decoded: their pixels would be discarded below.
        with_hole = holes[window.span].flatten(1).any(dim=1).tolist()
        extra = {} if all(with_hole) else {"decode": with_hole}
        features = encoded.take(step, ids)
        generated = generator(propagated.frames[:, ids],
                              (flows.forward[:, local[:-1]], flows.backward[:, local[:-1]]),
                              masks[:, ids], propagated.masks[:, ids], len(local),
                              features=features, **extra)
        pixels = to_uint8_frames(generated.reshape(-1, *generated.shape[-3:])[:len(local)])
        return torch.where(holes[window.span], pixels, original[window.span])

    generated = workers.map(composite, range(len(windows)), at_once=GENERATOR_WINDOWS_AT_ONCE)
    for window, frames in zip(windows, generated):
        fresh = ~written[window.span]
        averaged = (result[window.span].to(torch.float32) * 0.5
                    + frames.to(torch.float32) * 0.5).to(torch.uint8)
        result[window.span] = torch.where(fresh.to(frames.device).view(-1, 1, 1, 1), frames, averaged)
        written[window.span] = True
        tick()
    return result
