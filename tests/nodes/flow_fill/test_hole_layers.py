"""flow_fill.pipeline.hole_layers: which hole pixels hide the moving layer."""
from __future__ import annotations

import numpy as np

from flow_fill_testing import window_with_a_moving_layer
from vanish.nodes.ops.flow_fill.pipeline import hole_layers
from vanish.nodes.ops.flow_fill.propagation import Window, crosses_hole


def _block_with_a_hole_in_it(hole_speed: float, n: int = 10, h: int = 40, w: int = 120,
                             speed: float = 3.0) -> Window:
    """A 30x30 block moving ``speed`` px right per frame over a still background, a 16x14 hole in
    its middle moving ``hole_speed`` px per frame. The background's completed flow is zero, the
    block's own flow ``speed`` everywhere (what complete_own_flow gives in the hole)."""
    frames = np.full((n, h, w, 3), 100.0, np.float32)
    holes = np.zeros((n, h, w), bool)
    moving = np.zeros((n, h, w), bool)
    for i in range(n):
        x = int(round(10 + speed * i))
        frames[i, 5:35, x:x + 30] = 200.0
        moving[i, 5:35, x:x + 30] = True
        hx = int(round(18 + hole_speed * i))
        holes[i, 12:28, hx:hx + 14] = True
    return window_with_a_moving_layer(frames, holes, moving, speed)


def test_a_hole_travelling_with_the_thing_around_it_hides_no_part_of_it_without_evidence():
    """The hole moves with the block: traced along the block's motion, its pixels never leave it
    (no evidence either way), and the block all around it says nothing about what it hides (the
    shape of a thing beside it, its shadow's place). They are background: no layer, no following.
    A hole the block crosses (still, here) is a part of the block by its ring."""
    win = _block_with_a_hole_in_it(hole_speed=3.0)
    hole = ~win.safe_all[5]
    layer, follow = hole_layers(win, 5, hole, max_steps=30)
    assert not layer[hole].any() and not follow[hole].any()

    win = _block_with_a_hole_in_it(hole_speed=0.0)
    hole = ~win.safe_all[1]
    layer, follow = hole_layers(win, 1, hole, max_steps=30)
    assert layer[hole].all() and follow[hole].all()


def test_two_holes_moving_apart_each_keep_their_own_motion():
    """Two things masked apart in one frame, one hole moving right 3 px per frame, the other left;
    the moving layer moves right 3 px per frame. The right-moving hole travels with it (its pixels
    never see a part of it), the other is crossed by it. With one centre for both holes (the
    mean of the two shifts, none) both looked crossed."""
    n, h, w = 6, 40, 160
    frames = np.full((n, h, w, 3), 100.0, np.float32)
    holes = np.zeros((n, h, w), bool)
    for i in range(n):
        holes[i, 12:28, 20 + 3 * i:34 + 3 * i] = True
        holes[i, 12:28, 120 - 3 * i:134 - 3 * i] = True
    win = window_with_a_moving_layer(frames, holes, np.zeros((n, h, w), bool), speed=3.0)
    ys, xs = np.nonzero(holes[2])
    crossing = crosses_hole(win, 2, ys, xs)
    assert not crossing[xs < 80].any()
    assert crossing[xs >= 80].all()
