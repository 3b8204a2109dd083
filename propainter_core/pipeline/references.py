"""Which frames the generator sees besides its local window: the reference (non-local) frames.

parity: inference_propainter.py:159-173 (reference choice) and 410-422 (its use). Short clips
take every ``ref_stride``-th frame of the whole clip; clips longer than ``subvideo_length``
take about ``subvideo_length // ref_stride`` frames around the window instead, so that long
clips do not feed hundreds of reference frames to the transformer.
"""
from __future__ import annotations

from collections.abc import Sequence


def local_reference_count(num_frames: int, subvideo_length: int, ref_stride: int) -> int | None:
    """How many references a window may take around itself, or None for "every stride-th frame".

    parity: inference_propainter.py:411-414 (``ref_num = subvideo_length // ref_stride`` when
    the clip is longer than a sub-video, else ``-1``, which we spell None).
    """
    if num_frames > subvideo_length:
        return subvideo_length // ref_stride
    return None


def reference_frames(mid: int, neighbour_ids: Sequence[int], num_frames: int, ref_stride: int,
                     ref_count: int | None = None) -> list[int]:
    """Reference frame indices for the generator window centred at frame ``mid``.

    Args:
        mid: The window's chunk start ``f`` (the official ``mid_neighbor_id``).
        neighbour_ids: The window's local frames; they are never repeated as references.
        num_frames: Frames in the clip (or segment) being processed.
        ref_stride: Distance between reference frames, >= 1.
        ref_count: None: every ``ref_stride``-th frame of the clip. An int ``n``: the
            stride-th frames within ``(n // 2) * ref_stride`` of ``mid``.

    Returns:
        Sorted frame indices, none of them in ``neighbour_ids``.
    """
    local = set(neighbour_ids)
    if ref_count is None:
        return [i for i in range(0, num_frames, ref_stride) if i not in local]
    reach = ref_stride * (ref_count // 2)
    refs: list[int] = []
    for i in range(max(0, mid - reach), min(num_frames, mid + reach), ref_stride):
        if i in local:
            continue
        # parity: inference_propainter.py:170 checks ``> ref_num`` before appending, so up to
        # ref_num + 1 frames can be taken; the range above never yields that many, kept as is.
        if len(refs) > ref_count:
            break
        refs.append(i)
    return refs
