"""The one chunking helper: cut a sequence into chunks and pad each chunk with context.

The official script (``inference_propainter.py``) writes this loop out again for each stage:
RAFT clips (lines 312-327), flow-completion sub-videos (lines 342-364), image-propagation chunks
(lines 374-398) and, in a different form, the generator's neighbour windows (lines 417-421).
Every one of them is ``range(0, length, chunk)`` with a context margin clipped to the sequence,
so one function describes them all; each stage then decides what it keeps from a window.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One chunk of a sequence of ``length`` items, with its context margin.

    Attributes:
        start: First index of the padded span (the items the stage reads).
        stop: One past the last index of the padded span.
        core_start: First index this window owns (its chunk, without the context).
        core_stop: One past the last index it owns.
    """

    start: int
    stop: int
    core_start: int
    core_stop: int

    @property
    def span(self) -> slice:
        """The padded span as a slice of the whole sequence."""
        return slice(self.start, self.stop)

    @property
    def core(self) -> slice:
        """The owned chunk as a slice of the whole sequence."""
        return slice(self.core_start, self.core_stop)

    @property
    def keep(self) -> slice:
        """The owned chunk as a slice of the padded span (what a stage keeps of its output)."""
        return slice(self.core_start - self.start, self.core_stop - self.start)

    @property
    def indices(self) -> list[int]:
        """Every index of the padded span, in order."""
        return list(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def overlapping_windows(length: int, chunk: int, *, pad_before: int,
                        pad_after: int | None = None) -> list[Window]:
    """Split ``range(length)`` into chunks of ``chunk`` items, each padded with context.

    Chunk ``k`` owns ``[k * chunk, min(length, (k + 1) * chunk))`` and reads ``pad_before``
    items before it and ``pad_after`` items after it, both clipped to the sequence. The owned
    chunks tile the sequence without overlap; a sequence no longer than ``chunk`` is one window
    covering everything, which is exactly the official "no chunking" branch.

    Args:
        length: Number of items (frames or flows); 0 gives no windows.
        chunk: Items owned by each window (the official loop's step), >= 1.
        pad_before: Context read before each chunk, >= 0.
        pad_after: Context read after each chunk, >= 0; defaults to ``pad_before``.

    Returns:
        The windows in order.

    Raises:
        ValueError: ``length`` or a padding is negative, or ``chunk`` < 1.
    """
    pad_after = pad_before if pad_after is None else pad_after
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    if length < 0 or pad_before < 0 or pad_after < 0:
        raise ValueError(f"length and paddings must be >= 0, got length={length}, "
                         f"pad_before={pad_before}, pad_after={pad_after}")
    windows = []
    for core_start in range(0, length, chunk):
        core_stop = min(length, core_start + chunk)
        windows.append(Window(start=max(0, core_start - pad_before),
                              stop=min(length, core_stop + pad_after),
                              core_start=core_start, core_stop=core_stop))
    return windows


def raft_clip_windows(num_frames: int, clip_length: int) -> list[Window]:
    """Frame windows for RAFT: clips of ``clip_length`` frames sharing one frame with the previous.

    RAFT on frames ``[start, stop)`` gives flows ``start .. stop - 2``; with one frame of
    context before each clip, the flows of consecutive clips follow on without gap or overlap.

    parity: inference_propainter.py:314-319 (``frames[:, f-1:end_f]`` for every clip but the first).
    """
    return overlapping_windows(num_frames, clip_length, pad_before=1, pad_after=0)


def neighbour_windows(num_frames: int, neighbor_length: int) -> list[Window]:
    """The generator's windows of local frames, one every ``neighbor_length // 2`` frames.

    The window at ``f`` holds frames ``[f - stride, f + stride]`` (clipped): context of
    ``stride`` frames before the chunk ``[f, f + stride)`` and one after it.

    parity: inference_propainter.py:410, 417-421.

    Raises:
        ValueError: ``neighbor_length`` < 2 (the official stride would be 0).
    """
    stride = neighbor_length // 2
    if stride < 1:
        raise ValueError(f"neighbor_length must be at least 2, got {neighbor_length}")
    return overlapping_windows(num_frames, stride, pad_before=stride, pad_after=1)
