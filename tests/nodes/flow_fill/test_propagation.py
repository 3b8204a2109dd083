"""flow_fill.propagation: tracing along the flow and the vote between candidate sources."""
from __future__ import annotations

import numpy as np
import pytest

from flow_fill_testing import window_with_a_moving_layer
from vanish.nodes.ops.flow_fill.flow_completion import PairFlows
from vanish.nodes.ops.flow_fill.propagation import Window, choose_sources, make_window, moving_layer_pixels, trace
from vanish.nodes.ops.flow_fill.source_selection import safe_to_sample


def test_a_passing_thing_is_outvoted_by_the_background_seen_before_and_after():
    colours = np.array([[[200, 30, 30], [100, 100, 100], [102, 98, 100], [99, 101, 100]]], np.float32)
    distances = np.array([[1, 3, 5, 2]], np.float32)  # the nearest candidate is the red one
    values, reached, main = choose_sources(colours, distances, agree=24.0)
    assert reached[0] and np.abs(values[0] - 100).max() < 3
    assert main[0] != 0


def test_two_far_candidates_that_agree_do_not_outvote_a_near_one():
    # The road seen a frame away, and the same spot 14 and 16 frames away under the shadow of the
    # car that drives over it (or a long trace landing on the same wrong place twice).
    colours = np.array([[[120, 122, 125], [60, 62, 66], [62, 61, 65]]], np.float32)
    distances = np.array([[1, 14, 16]], np.float32)
    values, reached, main = choose_sources(colours, distances, agree=24.0)
    assert reached[0] and main[0] == 0
    np.testing.assert_allclose(values[0], colours[0, 0])
    # Near ones that agree still outvote one as near: the background seen the frame before and
    # three frames after a thing passing over the spot the frame after.
    colours = np.array([[[200, 30, 30], [100, 100, 100], [102, 98, 100]]], np.float32)
    values, _, main = choose_sources(colours, np.array([[1, 1, 3]], np.float32), agree=24.0)
    assert main[0] != 0 and np.abs(values[0] - 100).max() < 3


def test_two_disagreeing_candidates_give_the_nearer_and_agreeing_ones_are_averaged():
    colours = np.array([[[50, 50, 50], [150, 150, 150]], [[100, 100, 100], [110, 110, 110]]], np.float32)
    distances = np.array([[4, 2], [1, 1]], np.float32)
    values, reached, _ = choose_sources(colours, distances, agree=24.0)
    np.testing.assert_allclose(values[0], 150)
    np.testing.assert_allclose(values[1], 105)
    _, reached, _ = choose_sources(colours, np.full((2, 2), np.inf, np.float32), agree=24.0)
    assert not reached.any()


def test_trace_keeps_several_sources_at_least_gap_frames_apart():
    n, h, w = 8, 10, 12
    frames = np.stack([np.full((h, w, 3), 10.0 * i, np.float32) for i in range(n)])
    holes = np.zeros((n, h, w), bool)
    holes[0] = True  # the hole is frame 0 only; every later frame shows the spot
    zero = np.zeros((n - 1, h, w, 2), np.float32)
    win = Window(0, frames, ~holes, ~holes, np.zeros((n, h, w), bool), zero, zero)
    colour, distance = trace(win, 0, np.array([5]), np.array([6]), +1, max_steps=7, candidates=3, gap=2)
    np.testing.assert_array_equal(distance[0], [1, 3, 5])
    np.testing.assert_allclose(colour[0, :, 0], [10, 30, 50])


def _interpolated_flows_that_disagree(back_in_hole: float, own: bool, n: int = 8) -> Window:
    """``n`` frames (frame i all 10 * i), a still hole over columns 20..44, a motion of 3 px right per
    frame everywhere, measured outside the hole. Inside it the flow is interpolated: forward 3,
    backward ``back_in_hole`` (not -3). ``own``: these are the moving layer's own flows (the
    background's are zero); else the background's (no moving layer)."""
    h, w = 20, 60
    frames = np.stack([np.full((h, w, 3), 10.0 * i, np.float32) for i in range(n)])
    holes = np.zeros((n, h, w), bool)
    holes[:, :, 20:45] = True
    forward = np.zeros((n - 1, h, w, 2), np.float32)
    backward = np.zeros((n - 1, h, w, 2), np.float32)
    forward[..., 0], backward[..., 0] = 3.0, -3.0
    backward[:, :, 20:45, 0] = back_in_hole
    safe_all = safe_to_sample(~holes)
    if not own:
        return Window(0, frames, safe_all, safe_all, np.zeros((n, h, w), bool), forward, backward)
    zero = np.zeros_like(forward)
    return Window(0, frames, safe_all, safe_all, ~holes, zero, zero, forward, backward)


def test_a_hidden_part_of_a_thing_is_traced_on_where_its_interpolated_flows_disagree_a_little():
    """In the hole a moving thing's flows are interpolated; a step that reads one there is held to a
    wider bound, one that reads two to a wider one still, so the trace reaches the thing beyond the
    hole. A larger mismatch, or the same one on the background's flows, still ends it."""
    pixel = (np.array([10]), np.array([38]))
    layer = np.array([True])
    # 3 px forward, -2 back: 1 px apart, over the official bound (0.63 px^2), within 4x it.
    win = _interpolated_flows_that_disagree(-2.0, own=True)
    colour, distance = trace(win, 0, *pixel, +1, max_steps=6, in_moving_layer=layer)
    assert distance[0, 0] == 3 and colour[0, 0, 0] == 30.0  # 38 -> 41 -> 44 (hole) -> 47, frame 3
    # 1.4 px apart (1.96 px^2): over 2.5x the bound (1.54), within 4x it, from a hole pixel to a hole pixel.
    _, distance = trace(_interpolated_flows_that_disagree(-1.6, own=True), 0, *pixel, +1, max_steps=6,
                        in_moving_layer=layer)
    assert distance[0, 0] == 3
    # Backward from frame 12: -2 px a step through the hole (38 -> 36 ... -> 20), then 20 -> 18 out of
    # it, checked against the measured 3 px there: 1 px apart, within 2.5x the bound.
    long = _interpolated_flows_that_disagree(-2.0, own=True, n=14)
    colour, distance = trace(long, 12, *pixel, -1, max_steps=12, in_moving_layer=layer)
    assert distance[0, 0] == 10 and colour[0, 0, 0] == 20.0
    win = _interpolated_flows_that_disagree(-0.5, own=True)  # 2.5 px apart
    _, distance = trace(win, 0, *pixel, +1, max_steps=6, in_moving_layer=layer)
    assert not np.isfinite(distance[0, 0])
    win = _interpolated_flows_that_disagree(-2.0, own=False)  # the background's flows: the official test
    _, distance = trace(win, 0, *pixel, +1, max_steps=6, in_moving_layer=np.array([False]))
    assert not np.isfinite(distance[0, 0])
    # The traces that decide whether a hole pixel hides the thing are held to the same bounds: along
    # its motion this one lands on it 7 px past the hole, forward and backward.
    assert moving_layer_pixels(long, 6, np.array([10]), np.array([30]), max_steps=10)[0] == 1


def _block_entering_a_hole(n: int = 14, h: int = 40, w: int = 80, speed: float = 3.0) -> Window:
    """A still background, a 20x20 block moving ``speed`` px right per frame, a still hole it enters.

    The background's completed flow is zero; the block's own flow is ``speed`` everywhere it may
    be (what complete_own_flow gives in the hole). In frame 4 the block covers columns 22..41 and
    the hole columns 36..50 (rows 5..34): its columns 36..41 hide the block, 42..50 the background.
    """
    frames = np.full((n, h, w, 3), 100.0, np.float32)
    holes = np.zeros((n, h, w), bool)
    moving = np.zeros((n, h, w), bool)
    for i in range(n):
        x = int(10 + speed * i)
        frames[i, 10:30, x:x + 20] = 200.0
        moving[i, 6:34, max(0, x - 4):x + 24] = True  # the block grown by 4 px, as moving_layer does
        holes[i, 5:35, 36:51] = True
    return window_with_a_moving_layer(frames, holes, moving, speed)


def test_hole_pixels_over_the_moving_block_are_its_layer_those_beside_it_are_not():
    win = _block_entering_a_hole()
    ys, xs = np.nonzero(np.ones((40, 80), bool)[5:35, 36:51])
    ys, xs = ys + 5, xs + 36
    layer = moving_layer_pixels(win, 4, ys, xs, max_steps=10)
    over_block = (ys >= 12) & (ys < 28) & (xs <= 40)  # away from its outline by a pixel or two
    beside = (xs >= 44) | (ys < 8) | (ys >= 32)
    assert (layer[over_block] == 1).mean() > 0.95
    assert not (layer[beside] == 1).any()
    assert (layer[(xs >= 44) & (ys >= 12) & (ys < 28)] == -1).all()  # landed on the background: shown to be it


def test_a_layer_pixel_follows_the_things_own_motion_to_its_source():
    win = _block_entering_a_hole()
    ys, xs = np.array([20]), np.array([38])  # over the block in frame 4
    colour, distance = trace(win, 4, ys, xs, -1, max_steps=10, in_moving_layer=np.array([True]))
    assert np.isfinite(distance[0, 0]) and colour[0, 0, 0] == 200.0  # the block, seen before
    # Along the camera's (zero) motion the pixel stays in the still hole and is never seen.
    _, distance = trace(win, 4, ys, xs, -1, max_steps=10, in_moving_layer=np.array([False]))
    assert not np.isfinite(distance[0, 0])


def test_a_trace_still_in_the_hole_when_the_frames_run_out_needs_both_votes():
    """One vote on the thing is not enough where the other direction is unfinished (clip's end)."""
    win = _block_entering_a_hole()
    ys, xs = np.array([20]), np.array([38])
    assert moving_layer_pixels(win, 4, ys, xs, max_steps=10)[0] == 1
    # Only 2 frames of tracing forward: that direction stays inside the hole, unfinished.
    assert moving_layer_pixels(win, 4, ys, xs, max_steps=2)[0] == 0


def test_a_moving_pixel_the_frames_show_still_is_a_source_but_stays_in_the_moving_layer():
    """make_window: an outlier of the camera's motion (``moving_first``) is no source where the
    frames change there, and is one where they show it still (``still_first``); the window's
    moving layer (what the hole-layer vote and the blending read) keeps both."""
    h, w = 12, 16
    frames = np.zeros((2, h, w, 3), np.uint8)
    holes = np.zeros((2, h, w), bool)
    holes[:, 4:8, 6:10] = True
    moving = np.zeros((h, w), bool)
    moving[2:10, 0:5] = True  # a thing and DIS's margin beside the hole
    still = np.zeros((h, w), bool)
    still[2:10, 3:5] = True  # the margin: the frames do not change there
    zero = np.zeros((h, w, 2), np.float32)
    flows = {0: PairFlows(zero, zero, moving, moving, None, None, still, still)}
    win = make_window(frames, holes, flows, 0)
    for i in range(2):
        assert not win.safe[i][2:9, 0:2].any()  # the thing itself is no source
        assert win.safe[i][2:9, 3:4].all()  # the still margin is
        np.testing.assert_array_equal(win.moving[i], moving)
    # Without still pixels (older PairFlows), every moving pixel is kept out, as before.
    win = make_window(frames, holes, {0: PairFlows(zero, zero, moving, moving)}, 0)
    assert not win.safe[0][2:10, 0:5].any()

def test_one_landing_on_the_thing_is_enough_where_it_crosses_the_hole():
    """Near the clip's start the backward trace runs out of frames inside the hole. The block
    crosses the still hole at 3 px per frame, so its landing on the block a few frames later is
    enough: the pixel hides the block (a hole travelling along with a thing, its shadow's place,
    still needs both votes: the ghost failure-mode test)."""
    full = _block_entering_a_hole()
    s = 3  # the window starts at frame 3: frame 4 has one frame before it
    win = Window(0, full.frames[s:], full.safe[s:], full.safe_all[s:], full.moving[s:], full.forward[s:],
                 full.backward[s:], full.own_forward[s:], full.own_backward[s:])
    ys, xs = np.array([20, 20]), np.array([38, 47])  # over the block in frame 4; the background
    assert moving_layer_pixels(win, 1, ys, xs, max_steps=10).tolist() == [1, -1]


def test_outliers_one_pair_could_not_judge_are_judged_with_the_frames_other_pair():
    """Frame 1 belongs to two pairs. An outlier beside the hole that the pair with frame 0 could
    not judge (its comparison read the smoothed-over hole) is the moving layer's where the pair
    with frame 2 saw the frames change there, or could not judge it either; where that pair saw
    them hold still it is still background, a source. Frame 0, at the clip's start, has one pair:
    what it could not judge stays the layer's, as DIS said."""
    h, w = 24, 32
    frames = np.zeros((3, h, w, 3), np.uint8)
    holes = np.zeros((3, h, w), bool)
    holes[:, 18:22, 26:30] = True
    spot = np.zeros((h, w), bool)
    spot[6:14, 8:16] = True
    none = np.zeros((h, w), bool)
    zero = np.zeros((h, w, 2), np.float32)

    def window(later_unsure: np.ndarray, later_changes: np.ndarray) -> Window:
        flows = {0: PairFlows(zero, zero, none, none, None, None, None, None, spot, spot, none, none),
                 1: PairFlows(zero, zero, none, none, None, None, None, None, later_unsure, none, later_changes, none)}
        return make_window(frames, holes, flows, 0)

    changed = window(none, spot)
    assert changed.moving[1][spot].all() and not changed.safe[1][spot].any()
    still = window(none, none)
    assert not still.moving[1].any() and still.safe[1][8:12, 10:14].all()
    neither = window(spot, none)
    assert neither.moving[1][spot].all()
    assert still.moving[0][spot].all()  # one pair only
    assert not still.moving[2].any()  # nothing left undecided there


def test_choose_sources_in_chunks_equals_all_at_once_and_polls_between_them(monkeypatch):
    from vanish.nodes.ops.flow_fill import propagation
    from vanish.nodes.ops.flow_fill.settings import InpaintCancelled

    rng = np.random.default_rng(3)
    colours = rng.uniform(0, 255, (1000, 6, 3)).astype(np.float32)
    distances = rng.integers(1, 30, (1000, 6)).astype(np.float32)
    distances[rng.random((1000, 6)) < 0.3] = np.inf
    whole = choose_sources(colours, distances, agree=24.0)
    monkeypatch.setattr(propagation, "CHOOSE_CHUNK", 64)
    polls = []
    chunked = choose_sources(colours, distances, agree=24.0, should_cancel=lambda: polls.append(1) or False)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    assert len(polls) == 16  # ceil(1000 / 64)
    with pytest.raises(InpaintCancelled):
        choose_sources(colours, distances, agree=24.0, should_cancel=lambda: True)
