"""flow_fill.source_selection: which pixels may stand in for the hole."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.source_selection import carried_onto, consistent, safe_to_sample, source_pixels


def test_moving_pixels_are_no_source_and_known_ones_are():
    holes = np.zeros((2, 6, 6), bool)
    holes[0, 1:3, 1:3] = True
    moving = np.zeros_like(holes)
    moving[1, 4, 4] = True
    sources = source_pixels(holes, moving)
    assert not sources[0, 1, 1] and not sources[1, 4, 4] and sources[1, 0, 0]
    np.testing.assert_array_equal(source_pixels(holes, None), ~holes)


def test_a_bilinear_sample_is_safe_only_where_its_four_pixels_are_known():
    known = np.ones((1, 4, 4), bool)
    known[0, 2, 2] = False
    safe = safe_to_sample(known)
    assert not safe[0, 1, 1] and not safe[0, 1, 2] and not safe[0, 2, 1] and not safe[0, 2, 2]
    assert safe[0, 0, 0] and safe[0, 3, 3]


def test_a_carried_step_reads_the_mask_wherever_its_bilinear_sample_touches_it():
    thing = np.zeros((5, 20), bool)
    thing[:, 10] = True  # one column of a moving thing in the previous frame
    # (x, step in x): lands on 10.4 (reads 10 and 11), 10.0 (10 only), 9.0 (misses), 9.4 (9 and
    # 10); a pixel on the thing that barely moves (under STILL_PX: it stays); a step off the frame.
    cases = [(14, -3.6), (14, -4.0), (14, -5.0), (14, -4.6), (10, 0.3), (1, -3.0)]
    onto = []
    for x, step in cases:
        flow = np.zeros((5, 20, 2), np.float32)
        flow[2, x, 0] = step
        onto.append(bool(carried_onto(thing, flow, np.array([2]), np.array([x]))[0]))
    assert onto == [True, True, False, True, True, False]


def test_forward_backward_consistency():
    motion = np.array([[3.0, 0.0], [3.0, 0.0]], np.float32)
    back = np.array([[-3.0, 0.0], [3.0, 0.0]], np.float32)
    np.testing.assert_array_equal(consistent(motion, back), [True, False])


def test_a_hole_inside_a_moving_thing_belongs_to_it_and_one_beside_it_to_the_background():
    from vanish.nodes.ops.flow_fill.source_selection import hole_layer

    moving = np.zeros((40, 60), bool)
    moving[5:35, 5:30] = True  # the moving thing
    hole = np.zeros_like(moving)
    hole[12:20, 12:20] = True  # inside it
    hole[12:20, 40:50] = True  # beside it, in the background
    moving &= ~hole
    layer = hole_layer(moving, hole)
    assert layer[12:20, 12:20].all() and not layer[12:20, 40:50].any()
    assert not hole_layer(np.zeros_like(moving), hole).any()


def test_a_hole_half_over_a_moving_thing_takes_it_where_its_nearest_ring_is_the_thing():
    """A hole lies half over a moving block and half over the still background: its ring as a
    whole is split, so its one vote gives none of it to the block; pixel by pixel, the block's
    half is the block's and the background's half is not."""
    from vanish.nodes.ops.flow_fill.source_selection import hole_layer, nearby_layer

    moving = np.zeros((40, 80), bool)
    moving[5:35, 5:40] = True  # the moving block, its right edge at column 40
    hole = np.zeros_like(moving)
    hole[12:28, 24:56] = True  # columns 24..39 over the block, 40..55 over the background
    moving &= ~hole
    assert not hole_layer(moving, hole).any()
    layer = nearby_layer(moving, hole)
    assert layer[12:28, 24:34].all() and not layer[12:28, 46:56].any()
    assert not nearby_layer(np.zeros_like(moving), hole).any()
