"""flow_fill's second draw: the clip filled again from flows DIS measures on another grid (the frames mirrored,
one pyramid level finer), and the two fills averaged (their errors are largely independent: bench/RESULTS.md,
issue 13 session 20)."""
from __future__ import annotations

import cv2
import numpy as np

from vanish.nodes.ops.flow_fill import FlowFillSettings, dilate_holes, flow_fill_inpaint, pipeline
from vanish.nodes.ops.flow_fill.flow_completion import dis_flow

from .test_two_sided import _noisy_pan


def test_the_second_draw_is_a_fill_from_other_flows_averaged_with_the_first(monkeypatch):
    clean, given, masks = _noisy_pan(seed=2, t=6)
    holes = dilate_holes(masks, 4)
    single = FlowFillSettings(second_draw=False)
    first = flow_fill_inpaint(given, masks, single).astype(np.float32)
    both = flow_fill_inpaint(given, masks).astype(np.float32)
    measured = pipeline.pair_flows
    monkeypatch.setattr(pipeline, "pair_flows",
                        lambda gray, raw, pair, settings, should_cancel=None, draw=0:
                        measured(gray, raw, pair, settings, should_cancel, 1))
    second = flow_fill_inpaint(given, masks, single).astype(np.float32)
    assert np.abs(second - first)[holes].max() >= 4, "the other flows fill the same: not a test of the mean"
    # The first draw's fill is rounded before the mean: within a level of the exact mean.
    assert np.abs(both - 0.5 * (first + second))[holes].max() <= 1.0
    np.testing.assert_array_equal(both[~holes], given[~holes])


def test_the_second_draw_measures_the_same_motion_on_another_grid():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (64, 96)).astype(np.float32), (0, 0), 1.5)
    texture = np.clip((texture - 128) * 4 + 128, 0, 255).astype(np.uint8)
    moved = np.roll(texture, (1, 2), axis=(0, 1))  # 2 px right, 1 px down
    first, second = dis_flow(texture, moved), dis_flow(texture, moved, draw=1)
    inner = (slice(12, -12), slice(12, -12))
    for flow in (first, second):  # the mirrored flow is mirrored back: the same motion, rightwards
        np.testing.assert_allclose(np.median(flow[inner].reshape(-1, 2), 0), (2.0, 1.0), atol=0.25)
    assert np.abs(first - second)[inner].mean() > 0.01, "the same numbers: not another draw"
