"""flow_fill.blending: the gradient-domain blend between source regions, and the boundary match."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.blending import match_boundary, remove_seams


def _ramp(h: int = 50, w: int = 70) -> np.ndarray:
    x = np.arange(w, dtype=np.float32)
    y = np.arange(h, dtype=np.float32)[:, None]
    return np.broadcast_to((60.0 + 1.2 * x + 0.5 * y)[..., None], (h, w, 3)).astype(np.float32).copy()


def test_a_step_between_two_source_regions_is_removed_and_their_gradients_kept():
    truth = _ramp()
    hole = np.zeros(truth.shape[:2], bool)
    hole[10:40, 15:55] = True
    regions = np.zeros(hole.shape, np.int16)
    regions[:, 35:] = 4  # the right half came from 4 frames later ...
    regions[:, :35] = -2
    frame = truth.copy()
    frame[hole & (regions == 4)] += 30.0  # ... when the light was brighter
    match_boundary(frame, hole)  # the pipeline's order: the outline first, then the inner seams
    remove_seams(frame, hole, regions)
    error = frame - truth
    assert np.abs(error[hole]).mean() < 3.0  # the offset is gone but for a smooth remainder
    inner = np.zeros_like(hole)
    inner[12:38, 17:53] = True  # the outline's first two rows keep what the boundary match left
    step = np.abs(np.diff(error[..., 0], axis=1))[inner[:, 1:] & inner[:, :-1]]
    assert step.max() < 3.0  # no jump between neighbours inside (the step was 30)


def test_a_fill_from_one_region_is_left_as_it_is():
    truth = _ramp()
    rng = np.random.default_rng(2)
    truth += rng.normal(0, 5, truth.shape).astype(np.float32)
    hole = np.zeros(truth.shape[:2], bool)
    hole[10:40, 15:55] = True
    frame = truth.copy()
    remove_seams(frame, hole, np.full(hole.shape, 3, np.int16))
    np.testing.assert_array_equal(frame, truth)


def test_ignored_pixels_around_the_hole_do_not_pull_the_fill():
    truth = _ramp()
    hole = np.zeros(truth.shape[:2], bool)
    hole[10:40, 15:55] = True
    regions = np.where(np.arange(70)[None, :] < 35, 1, 2).astype(np.int16).repeat(50, 0)
    frame = truth.copy()
    frame[:, :15] = 255.0  # a bright thing moving on its own beside the hole
    ignore = np.zeros(hole.shape, bool)
    ignore[:, :15] = True
    remove_seams(frame, hole, regions, ignore=ignore)
    assert np.abs(frame[hole] - truth[hole]).max() < 2.0


def test_the_seam_solve_polls_the_cancel_and_stops_when_asked():
    # Over a fifth of a 1080p frame the seam removal takes about 1.5 s: it polls within its solve.
    import pytest

    from vanish.nodes.ops.flow_fill.settings import InpaintCancelled

    truth = _ramp()
    hole = np.zeros(truth.shape[:2], bool)
    hole[10:40, 15:55] = True
    regions = np.zeros(hole.shape, np.int16)
    regions[:, 35:] = 4
    frame = truth.copy()
    frame[hole & (regions == 4)] += 30.0
    polls = []
    solved = frame.copy()
    remove_seams(solved, hole, regions, should_cancel=lambda: polls.append(1) or False)
    assert len(polls) >= 2 and not np.array_equal(solved, frame)
    untouched = frame.copy()
    with pytest.raises(InpaintCancelled):
        remove_seams(untouched, hole, regions, should_cancel=lambda: True)
    np.testing.assert_array_equal(untouched, frame)  # stopped before writing anything
