"""The one chunking helper, the generator's windows and the reference-frame choice.

Expected values are written out by hand from the official loops (inference_propainter.py) and
from the e2e parity README, which lists the windows and references of both parity runs.
"""
from __future__ import annotations

import pytest

from propainter_core.pipeline.chunking import (Window, neighbour_windows, overlapping_windows,
                                               raft_clip_windows)
from propainter_core.pipeline.references import local_reference_count, reference_frames
from propainter_core.pipeline.run import plan_segments


def spans(windows):
    return [(w.start, w.stop, w.core_start, w.core_stop) for w in windows]


def test_short_sequence_is_one_window_covering_everything():
    assert spans(overlapping_windows(7, 80, pad_before=5)) == [(0, 7, 0, 7)]


def test_flow_completion_subvideos_with_padding_5():
    # 15 flows (16 frames), subvideo_length 8: official s_f/e_f of lines 345-349
    assert spans(overlapping_windows(15, 8, pad_before=5)) == [(0, 13, 0, 8), (3, 15, 8, 15)]


def test_keep_slices_cut_the_core_out_of_the_span():
    first, second = overlapping_windows(15, 8, pad_before=5)
    assert first.keep == slice(0, 8) and second.keep == slice(5, 12)
    assert list(range(15))[second.span][second.keep] == list(range(8, 15))


def test_cores_tile_the_sequence():
    for length in range(0, 30):
        for chunk in (1, 3, 8):
            cores = [i for w in overlapping_windows(length, chunk, pad_before=2, pad_after=4)
                     for i in range(w.core_start, w.core_stop)]
            assert cores == list(range(length))


def test_asymmetric_padding_and_window_helpers():
    w = overlapping_windows(20, 6, pad_before=2, pad_after=0)[1]
    assert (w.start, w.stop, len(w), w.indices[:2]) == (4, 12, 8, [4, 5])
    assert isinstance(w, Window)


def test_raft_clips_share_one_frame():
    # e2e README: "frames 0-11, then frames 11-15"
    assert spans(raft_clip_windows(16, 12)) == [(0, 12, 0, 12), (11, 16, 12, 16)]
    assert spans(raft_clip_windows(12, 12)) == [(0, 12, 0, 12)]
    assert spans(raft_clip_windows(5, 2)) == [(0, 2, 0, 2), (1, 4, 2, 4), (3, 5, 4, 5)]


def test_neighbour_windows_default_run():
    # neighbor_length 10 -> stride 5: windows at f = 0, 5, 10, 15 on 16 frames
    windows = neighbour_windows(16, 10)
    assert [w.core_start for w in windows] == [0, 5, 10, 15]
    assert [w.indices for w in windows][:2] == [list(range(0, 6)), list(range(0, 11))]
    assert windows[-1].indices == list(range(10, 16))


def test_neighbour_windows_need_a_stride():
    with pytest.raises(ValueError, match="neighbor_length must be at least 2"):
        neighbour_windows(16, 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(length=5, chunk=0, pad_before=1), "chunk must be at least 1"),
    (dict(length=-1, chunk=2, pad_before=1), "must be >= 0"),
    (dict(length=5, chunk=2, pad_before=-1), "must be >= 0"),
])
def test_overlapping_windows_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        overlapping_windows(**kwargs)


def test_global_references_default_run():
    # e2e README: windows at f = 0, 5, 10, 15 take references [10], none, [0], [0]
    refs = [reference_frames(w.core_start, w.indices, 16, 10, local_reference_count(16, 80, 10))
            for w in neighbour_windows(16, 10)]
    assert refs == [[10], [], [0], [0]]


def test_local_references_chunked_run():
    # e2e README: ref_num = 8 // 4 = 2; references 2, 5, 8, 11 for windows at f = 6, 9, 12, 15
    count = local_reference_count(16, 8, 4)
    assert count == 2
    refs = {w.core_start: reference_frames(w.core_start, w.indices, 16, 4, count)
            for w in neighbour_windows(16, 6)}
    assert refs == {0: [], 3: [], 6: [2], 9: [5], 12: [8], 15: [11]}


def test_local_references_long_clip():
    # 200 frames, defaults: ref_num 8 -> stride-10 frames within 40 of f, outside the window
    window = neighbour_windows(200, 10)[20]  # f = 100, frames 95..105
    assert reference_frames(100, window.indices, 200, 10, 8) == [60, 70, 80, 90, 110, 120, 130]
    assert reference_frames(0, range(0, 6), 200, 10, 0) == []


def test_segments_merge_identical_spans_and_keep_pairs():
    # 16 frames in segments of 8 with 10 frames of context: both spans are the whole clip
    assert spans(plan_segments(16, 8, 10)) == [(0, 16, 0, 16)]
    assert spans(plan_segments(30, 10, 2)) == [(0, 12, 0, 10), (8, 22, 10, 20), (18, 30, 20, 30)]
    # a one-frame last segment without context still gets a pair of frames for RAFT
    assert spans(plan_segments(9, 4, 0)) == [(0, 4, 0, 4), (4, 8, 4, 8), (7, 9, 8, 9)]
