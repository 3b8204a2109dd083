"""flow_fill.spatial_fill: the exemplar fill of never-seen pixels."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.spatial_fill import exemplar_fill


def test_stripes_go_on_through_the_hole_sharp_and_in_place():
    h, w = 60, 80
    x = np.arange(w)
    stripes = np.where((x // 6) % 2 == 0, 40.0, 200.0)[None, :, None].repeat(h, 0).repeat(3, 2).astype(np.float32)
    hole = np.zeros((h, w), bool)
    hole[20:40, 25:50] = True
    image = stripes.copy()
    image[hole] = 128.0
    exemplar_fill(image, hole)
    assert np.abs(image[hole] - stripes[hole]).mean() < 5.0  # copied patches, not a grey membrane


def test_avoided_pixels_are_never_copied():
    rng = np.random.default_rng(0)
    h, w = 60, 80
    image = rng.uniform(80, 120, size=(h, w, 3)).astype(np.float32)
    image[:, :20] = (250.0, 0.0, 0.0)  # a red thing on the left
    avoid = np.zeros((h, w), bool)
    avoid[:, :20] = True
    hole = np.zeros((h, w), bool)
    hole[20:40, 20:45] = True  # touching the red thing
    exemplar_fill(image, hole, avoid)
    inside = image[hole]
    assert (inside[:, 0] - inside[:, 1:].max(1) > 60).mean() == 0.0


def test_a_frame_too_small_for_a_patch_falls_back_to_telea():
    image = np.full((6, 6, 3), 90.0, np.float32)
    hole = np.zeros((6, 6), bool)
    hole[2:4, 2:4] = True
    image[hole] = 0.0
    exemplar_fill(image, hole)
    assert np.abs(image[hole] - 90.0).max() <= 1.0
