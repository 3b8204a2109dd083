"""Forward and backward flows between consecutive frames of a clip."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from .model import RAFT, check_iterations

#: Runs ``function`` on every item and gives the results in order: the builtin ``map``, or
#: :meth:`propainter_core.pipeline.workers.Workers.map` (the items on worker threads).
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]

#: The encoders see at most this many pixels per call (one 960x540 frame, five at 432x240), so
#: that every layer of a call is short and a cancel check between layers lands quickly, and so
#: that the largest activation (64 channels at half size: 32 MiB) stays under glibc's largest
#: mmap threshold, where freed memory is reused instead of mapped afresh (12 frames at 432x240,
#: 1 thread: 6.1-6.6 -> 4.7 CPU-s, page faults 0.86 M -> 0.2 M; issue 14, session 4). The
#: encoders work per sample, so this changes nothing else.
ENCODER_PIXELS_PER_CALL = 2**19


def _check_frames(raft: RAFT, frames: torch.Tensor) -> None:
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(
            f"frames must be [B, T, 3, H, W] (batch, time, RGB, height, width), "
            f"got shape {tuple(frames.shape)}")
    if frames.shape[1] < 2:
        raise ValueError(f"flow needs at least 2 frames, got T={frames.shape[1]}")
    if not frames.is_floating_point():
        raise ValueError(f"frames must be float in [-1, 1], got dtype {frames.dtype}")
    raft.check_image_size(frames.shape[-2], frames.shape[-1])
    if raft.training:
        # the context encoder's batch norms would use batch statistics: wrong flows, no error
        raise ValueError("RAFT is in training mode; call raft.eval() before estimating flow")


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def batch_size(count: int, max_pairs: int) -> int:
    """Pairs per refinement batch: at most ``max_pairs``, batches of even size, and an even number
    of batches when there are two pairs or more (22 pairs, at most 15 -> 11 + 11; 14 -> 7 + 7), so
    that two workers get the same work. The plan depends only on these two numbers, so a run gives
    the same flows whatever the workers."""
    batches = -(-count // max_pairs)
    batches += batches % 2 if count >= 2 else 0
    return -(-count // batches)


@torch.no_grad()
def bidirectional_flow(raft: RAFT, frames: torch.Tensor, *, iters: int = 20,
                       max_pairs: int | None = None, mapper: Mapper = map) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows between every pair of neighbouring frames, in both directions.

    Same outputs as the official bidirectional wrapper (``model/modules/flow_comp_raft.py``),
    computed with less work: each frame's matching and context features are computed once and
    shared by both directions (the wrapper encodes every frame up to four times). The encoders
    work per sample, so this changes results only by float jitter.

    Args:
        raft: A RAFT model (eval mode, weights loaded), on the device of ``frames``.
        frames: ``[B, T, 3, H, W]`` float in [-1, 1] (``uint8 / 255 * 2 - 1``), T >= 2,
            H and W multiples of 8 and at least 128. parity: the wrapper passes these values
            to RAFT unchanged (the ``/255`` scaling in ``RAFT/raft.py:90`` is commented out).
        iters: Refinement steps per pair (ProPainter's ``raft_iter`` default is 20).
        max_pairs: Refine at most this many frame pairs in one batch. Default ``B * (T-1)``:
            one direction at a time, so the correlation volumes peak at the size the official
            wrapper reaches (``(H/8 * W/8)^2`` floats per pair: 0.8 GB at 1280x720). Larger
            values batch both directions (no faster on CPU); smaller ones save memory. The
            pairs are split into an even number of batches of even size (:func:`batch_size`).
            Results do not depend on it (float jitter aside).
        mapper: runs the independent encoder calls and refinement batches (the builtin ``map``:
            one after another; the pipeline passes its workers' ``map``).
    Returns:
        ``(flows_forward, flows_backward)``, each ``[B, T-1, 2, H, W]`` float32 in pixels
        (channel 0 = x, 1 = y): ``flows_forward[:, t]`` is the flow from frame t to t+1,
        ``flows_backward[:, t]`` the flow from frame t+1 to t.

    Raises:
        ValueError: On a wrong layout, fewer than 2 frames, a size RAFT cannot handle,
            ``iters < 1``, ``max_pairs < 1``, or a model left in training mode.
    """
    _check_frames(raft, frames)
    check_iterations(iters)
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be None or at least 1, got {max_pairs}")
    batch, time, _, height, width = frames.shape
    dtype = next(raft.parameters()).dtype
    images = frames.to(dtype).reshape(batch * time, 3, height, width)  # [B*T, 3, H, W]
    per_call = max(1, ENCODER_PIXELS_PER_CALL // (height * width))
    parts = images.split(-(-len(images) // -(-len(images) // per_call)))  # even sizes: 12 -> 4 + 4 + 4
    encoders = [raft.encode_features] * len(parts) + [raft.encode_context] * len(parts)
    encoded = list(mapper(lambda task: task[0](task[1]), zip(encoders, parts + parts)))
    features = _joined(encoded[:len(parts)])
    hidden, context = _joined([h for h, _ in encoded[len(parts):]]), _joined([c for _, c in encoded[len(parts):]])
    del encoded
    features = features.view(batch, time, *features.shape[1:])  # [B, T, C, h, w]
    hidden = hidden.view(batch, time, *hidden.shape[1:])  # [B, T, hidden_dim, h, w]
    context = context.view(batch, time, *context.shape[1:])  # [B, T, context_dim, h, w]

    def pairs(x: torch.Tensor, *, first: bool) -> torch.Tensor:
        # direction-major: all forward pairs (t, t+1), then all backward pairs (t+1, t)
        a, b = (x[:, :-1], x[:, 1:]) if first else (x[:, 1:], x[:, :-1])
        both = torch.stack([a, b])  # [2, B, T-1, C, h, w]
        return both.reshape(2 * batch * (time - 1), *x.shape[2:])  # [2*B*(T-1), C, h, w]

    features1, features2 = pairs(features, first=True), pairs(features, first=False)
    hidden1, context1 = pairs(hidden, first=True), pairs(context, first=True)
    count = features1.shape[0]
    step = batch_size(count, batch * (time - 1) if max_pairs is None else int(max_pairs))

    def refine(i: int) -> torch.Tensor:
        return raft.refine(features1[i:i + step], features2[i:i + step], hidden1[i:i + step],
                           context1[i:i + step], iters=iters)

    flows = torch.cat(list(mapper(refine, range(0, count, step))))  # [2*B*(T-1), 2, H, W]
    flows = flows.view(2, batch, time - 1, 2, height, width)  # [direction, B, T-1, 2, H, W]
    return flows[0], flows[1]
