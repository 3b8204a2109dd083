"""flow_fill's second draw: the clip filled again from flows DIS measures one pyramid level finer, and the two
fills averaged (their errors are largely independent: bench/RESULTS.md, issue 13 session 20)."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill import FlowFillSettings, dilate_holes, flow_fill_inpaint, pipeline
from vanish.nodes.ops.flow_fill.flow_completion import dis_flow

from .test_two_sided import _noisy_pan


def test_the_second_draw_is_a_fill_from_finer_flows_averaged_with_the_first(monkeypatch):
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
    assert np.abs(second - first)[holes].max() >= 4, "the finer flows fill the same: not a test of the mean"
    # The first draw's fill is rounded before the mean: within a level of the exact mean.
    assert np.abs(both - 0.5 * (first + second))[holes].max() <= 1.0
    np.testing.assert_array_equal(both[~holes], given[~holes])


def test_a_finer_draw_measures_the_flow_at_full_resolution():
    rng = np.random.default_rng(0)
    texture = (rng.uniform(0, 255, (64, 96)) > 128).astype(np.uint8) * 255
    moved = np.roll(texture, 1, axis=1)
    coarse, fine = dis_flow(texture, moved), dis_flow(texture, moved, finer=1)
    assert not np.array_equal(coarse, fine)
    # Below full resolution there is nothing finer: a second level finer is the same draw.
    np.testing.assert_array_equal(fine, dis_flow(texture, moved, finer=2))
