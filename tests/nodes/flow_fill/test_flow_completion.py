"""flow_fill.flow_completion: the motion layer that is not the camera's, and its completed flow."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.flow_completion import complete_flow_and_layers, complete_own_flow, moving_layer


def _scene(h: int = 80, w: int = 120) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The camera pans 2 px right; a block beside the hole moves 6 px left; the hole in the middle."""
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = 2.0
    block = (slice(30, 50), slice(20, 36))
    flow[block] = (-6.0, 0.0)
    hole = np.zeros((h, w), bool)
    hole[30:50, 44:70] = True
    return flow, hole, block


def test_the_block_moving_on_its_own_is_its_own_layer_and_follows_the_camera_inside_the_box():
    flow, hole, block = _scene()
    out, moving = complete_flow_and_layers(flow, hole)
    assert moving[block].all()
    assert not moving[:, 90:].any()  # the background is not
    np.testing.assert_allclose(out[hole], np.broadcast_to((2.0, 0.0), out[hole].shape), atol=0.2)
    # the block's own flow is replaced by the background's, so a path through it goes on with the background
    np.testing.assert_allclose(out[block], np.broadcast_to((2.0, 0.0), out[block].shape), atol=0.5)


def test_specks_of_noisy_flow_are_not_a_layer():
    flow, hole, _ = _scene()
    flow[10, 100] = (9.0, 9.0)  # one wild vector (flat area, say)
    flow[70:72, 5:7] = (-9.0, 0.0)
    matrix = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]])
    moving = moving_layer(flow, matrix, (0, 80, 0, 120))
    assert not moving[8:13, 97:104].any() and not moving[68:75, 3:10].any()


def test_unmeasured_pixels_are_never_part_of_the_layer():
    flow, hole, block = _scene()
    matrix = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]])
    unmeasured = np.zeros(hole.shape, bool)
    unmeasured[block] = True
    assert not moving_layer(flow, matrix, (0, 80, 0, 120), unmeasured)[block].any()


def test_the_moving_layers_own_flow_goes_on_into_the_hole_and_none_without_one():
    """A hole beside the block: its own completed flow is the block's motion, not the camera's."""
    flow, hole, block = _scene()
    _, moving = complete_flow_and_layers(flow, hole)
    own = complete_own_flow(flow, hole, moving)
    assert own is not None
    # Inside the hole the nearest moving thing's motion (-6, 0), not the camera's (2, 0).
    np.testing.assert_allclose(own[hole], np.broadcast_to((-6.0, 0.0), own[hole].shape), atol=0.5)
    # Known pixels keep their measured flow (the block's own, too: it is not replaced here).
    np.testing.assert_array_equal(own[~hole], flow[~hole])
    assert complete_own_flow(flow, hole, np.zeros_like(hole)) is None
