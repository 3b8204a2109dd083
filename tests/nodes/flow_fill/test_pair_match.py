"""flow_fill.pair_match: the nearest forward and backward sources, moved to where they show the same thing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vanish.nodes.ops.flow_fill import pair_match
from vanish.nodes.ops.flow_fill.pair_match import PairMatcher, _best_offset
from vanish.nodes.ops.flow_fill.propagation import Window, _sample_landings, trace
from vanish.nodes.ops.flow_fill.source_selection import safe_to_sample

N, H, W = 16, 64, 112
# The hole: rows 22..41, columns 40..61 of frames 4..11; the others show everything.
ROWS, COLS, HIDDEN = slice(22, 42), slice(40, 62), range(4, 12)
TARGET = 8  # its nearest sources: up to 4 steps ahead (frame 12) and 5 back (frame 3)


def _panning_window(flow_error: float, moving: np.ndarray | None = None) -> Window:
    """The background moves 1 px right per frame; the completed flow says ``1 + flow_error`` (and its
    backward flow ``-(1 + flow_error)``) over the hole and 30 px around it."""
    noise = np.random.default_rng(3).normal(0.0, 1.0, (H, W + N, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    texture = np.clip(128.0 + smooth * (30.0 / smooth.std()), 0, 255).astype(np.float32)
    frames = np.stack([texture[:, N - i:N - i + W] for i in range(N)])
    holes = np.zeros((N, H, W), bool)
    holes[HIDDEN.start:HIDDEN.stop, ROWS, COLS] = True
    region = np.zeros((H, W), bool)
    region[ROWS.start - 20:ROWS.stop + 20, COLS.start - 30:COLS.stop + 30] = True
    forward = np.zeros((N - 1, H, W, 2), np.float32)
    forward[..., 0] = np.where(region, 1.0 + flow_error, 1.0)
    known = safe_to_sample(~holes)
    layer = np.zeros((N, H, W), bool) if moving is None else moving
    return Window(0, frames, known, known, layer, forward, -forward)


def _nearest_sources(win: Window) -> tuple[np.ndarray, ...]:
    ys, xs = (a.ravel() for a in np.mgrid[ROWS, COLS])
    first_f, first_b = np.full((ys.size, 3), -1, np.float32), np.full((ys.size, 3), -1, np.float32)
    _, steps_f = trace(win, TARGET, ys, xs, +1, max_steps=8, first=first_f)
    _, steps_b = trace(win, TARGET, ys, xs, -1, max_steps=8, first=first_b)
    assert np.isfinite(steps_f[:, 0]).all() and np.isfinite(steps_b[:, 0]).all()
    return ys, xs, first_f, first_b, steps_f[:, 0], steps_b[:, 0]


def test_a_per_step_bias_is_split_between_the_two_sources_and_both_land_on_the_truth():
    win = _panning_window(flow_error=0.15)  # ahead 4 steps: 0.6 px too far; back 5 steps: 0.75 px the other way
    ys, xs, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    truth = win.frames[TARGET][ys, xs]
    moved_f, moved_b, moved = win.pair_matcher().match(first_f, first_b, steps_f, steps_b)
    assert moved.all()
    for before, after in ((first_f, moved_f), (first_b, moved_b)):
        error_before = np.abs(_sample_landings(win.frames, before) - truth).mean()
        error_after = np.abs(_sample_landings(win.frames, after) - truth).mean()
        assert error_before > 4.0, error_before  # the flaw is visible
        assert error_after < 0.3 * error_before, (error_after, error_before)


def test_a_drift_of_several_px_is_found_too():
    # 0.5 px per step: the sources land 2 px ahead and 2.5 px back, 4.5 px apart (a hidden part of a
    # moving thing whose interpolated motion is off); the session-9 matcher reached 2 px.
    win = _panning_window(flow_error=0.5)
    ys, xs, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    truth = win.frames[TARGET][ys, xs]
    moved_f, moved_b, moved = win.pair_matcher().match(first_f, first_b, steps_f, steps_b, ys, xs)
    assert moved.all()
    for before, after in ((first_f, moved_f), (first_b, moved_b)):
        error_before = np.abs(_sample_landings(win.frames, before) - truth).mean()
        error_after = np.abs(_sample_landings(win.frames, after) - truth).mean()
        assert error_before > 12.0, error_before
        assert error_after < 0.2 * error_before, (error_after, error_before)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_neighbouring_pixels_decide_their_shared_drift_together(seed):
    # Grain on every frame: one pixel's 7x7 patches alone often match a wrong place; the costs
    # averaged over its neighbours (whose traces drift alike) find the drift.
    win = _panning_window(flow_error=0.15)
    clean = win.frames.copy()
    grainy = clean + np.random.default_rng(seed).normal(0.0, 8.0, clean.shape).astype(np.float32)
    win = Window(0, grainy, win.safe, win.safe_all, win.moving, win.forward, win.backward)
    ys, xs, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    truth = clean[TARGET][ys, xs]
    errors = []
    for places in ((), (ys, xs)):
        moved_f, _, _ = win.pair_matcher().match(first_f, first_b, steps_f, steps_b, *places)
        errors.append(np.abs(_sample_landings(clean, moved_f) - truth).mean())
    alone, together = errors
    assert together < 0.6 * alone, (together, alone)


def test_exact_flows_are_left_where_they_landed():
    win = _panning_window(flow_error=0.0)
    _, _, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    moved_f, moved_b, _ = win.pair_matcher().match(first_f, first_b, steps_f, steps_b)
    assert np.abs(moved_f - first_f).max() < 0.1 and np.abs(moved_b - first_b).max() < 0.1


def test_a_pair_with_a_moving_thing_beside_one_source_only_is_left_alone():
    moving = np.zeros((N, H, W), bool)
    moving[TARGET + 1:] = True  # everything ahead is "a thing moving on its own", nothing behind
    win = _panning_window(flow_error=0.15, moving=moving)
    _, _, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    moved_f, moved_b, moved = win.pair_matcher().match(first_f, first_b, steps_f, steps_b)
    assert not moved.any()
    np.testing.assert_array_equal(moved_f, first_f)
    np.testing.assert_array_equal(moved_b, first_b)


def test_pixels_with_one_source_only_are_not_moved():
    frames = np.zeros((3, 8, 8, 3), np.float32)
    matcher = PairMatcher(frames, np.zeros((3, 8, 8), bool))
    first_f = np.array([[2, 3, 3], [-1, -1, -1]], np.float32)
    first_b = np.array([[-1, -1, -1], [0, 4, 4]], np.float32)
    moved_f, moved_b, moved = matcher.match(first_f, first_b, np.array([1.0, np.inf]), np.array([np.inf, 1.0]))
    assert not moved.any()
    np.testing.assert_array_equal(moved_f, first_f)
    np.testing.assert_array_equal(moved_b, first_b)


def test_the_best_offset_is_refined_between_the_grid_points():
    reach = np.arange(-2, 3, dtype=np.float32)
    gy, gx = np.meshgrid(reach, reach, indexing="ij")
    cost = ((gy - 0.3) ** 2 + (gx + 0.7) ** 2)[..., None].astype(np.float32)  # a bowl at (0.3, -0.7)
    np.testing.assert_allclose(_best_offset(cost, reach)[0], [0.3, -0.7], atol=1e-5)


def test_bands_of_rows_give_the_offsets_of_all_pixels_at_once(monkeypatch):
    # A large hole is matched in bands of rows (bounded memory); each band reads its neighbours' costs,
    # so the result is the same as with every pixel at once.
    win = _panning_window(flow_error=0.3)
    grainy = win.frames + np.random.default_rng(9).normal(0.0, 8.0, win.frames.shape).astype(np.float32)
    win = Window(0, grainy, win.safe, win.safe_all, win.moving, win.forward, win.backward)
    ys, xs, first_f, first_b, steps_f, steps_b = _nearest_sources(win)
    whole_f, whole_b, whole = win.pair_matcher().match(first_f, first_b, steps_f, steps_b, ys, xs)
    monkeypatch.setattr(pair_match, "BAND_PIXELS", 50)  # 20 rows of 22 pixels: bands of 2 rows
    banded_f, banded_b, banded = win.pair_matcher().match(first_f, first_b, steps_f, steps_b, ys, xs)
    np.testing.assert_array_equal(banded, whole)
    np.testing.assert_allclose(banded_f, whole_f, atol=1e-4)
    np.testing.assert_allclose(banded_b, whole_b, atol=1e-4)
    assert np.abs(whole_f - first_f).max() > 1.0  # the drift was there to find


def test_bands_hold_whole_rows_and_their_margins(monkeypatch):
    monkeypatch.setattr(pair_match, "BAND_PIXELS", 200)
    rows = np.repeat(np.arange(100), 30)  # 100 rows of 30 pixels; row 50 has 500
    rows = np.concatenate([rows, np.full(470, 50)])
    bands = list(pair_match._bands(rows, rows.size))
    assert len(bands) > 10
    cores = np.concatenate([core for core, _ in bands])
    np.testing.assert_array_equal(np.sort(cores), np.arange(rows.size))  # every pixel once
    for core, context in bands:
        assert core.size <= pair_match.BAND_PIXELS or np.unique(rows[core]).size == 1
        assert np.isin(core, context).all()
        low, high = rows[core].min(), rows[core].max()
        near = np.nonzero((rows >= low - pair_match._BAND_MARGIN) & (rows <= high + pair_match._BAND_MARGIN))[0]
        np.testing.assert_array_equal(context, near)


def test_a_window_taller_than_opencv_reads_is_matched_too():
    # The matcher reads all of a window's frames as one tall image: 40 frames of 900 rows are 36,000
    # rows, more than OpenCV's remap takes (fewer than 32,767; 120 frames of 540 rows, the default
    # window at 960x540, raised an assertion inside OpenCV). A pan of 1 px per frame; the sources 2
    # frames ahead (rows beyond 32,767) and 2 back land 0.6 px too far each way.
    n, h, w = 40, 900, 48
    noise = np.random.default_rng(8).normal(0.0, 1.0, (h, w + n, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    texture = np.clip(128.0 + smooth * (30.0 / smooth.std()), 0, 255).astype(np.float32)
    frames = np.stack([texture[:, n - i:n - i + w] for i in range(n)])
    matcher = PairMatcher(frames, np.zeros((n, h, w), bool))
    ys, xs = (a.ravel().astype(np.float32) for a in np.mgrid[600:606, 20:28])
    target = 35
    first_f = np.stack([np.full_like(ys, target + 2), ys, xs + 2.6], 1)
    first_b = np.stack([np.full_like(ys, target - 2), ys, xs - 2.6], 1)
    steps = np.full(ys.size, 2.0, np.float32)
    moved_f, moved_b, moved = matcher.match(first_f, first_b, steps, steps, ys.astype(int), xs.astype(int))
    assert moved.all()
    np.testing.assert_allclose(moved_f[:, 2], xs + 2, atol=0.1)
    np.testing.assert_allclose(moved_b[:, 2], xs - 2, atol=0.1)
