"""flow_fill.propagation: tracing along the flow and the vote between candidate sources."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.propagation import Window, choose_sources, trace


def test_a_passing_thing_is_outvoted_by_the_background_seen_before_and_after():
    colours = np.array([[[200, 30, 30], [100, 100, 100], [102, 98, 100], [99, 101, 100]]], np.float32)
    distances = np.array([[1, 3, 5, 2]], np.float32)  # the nearest candidate is the red one
    values, reached, main = choose_sources(colours, distances, agree=24.0)
    assert reached[0] and np.abs(values[0] - 100).max() < 3
    assert main[0] != 0


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
