"""Mask dilation against scipy.ndimage.binary_dilation, the official script's own call."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from propainter_core.ops.morphology import binary_dilation, dilate_hole_masks


def scipy_dilation(mask: np.ndarray, iterations: int) -> np.ndarray:
    # the official call, inference_propainter.py:96/105 (default cross, border 0)
    return np.stack([scipy.ndimage.binary_dilation(m, iterations=iterations) for m in mask])


@pytest.mark.parametrize("iterations", [1, 2, 4, 8])
def test_matches_scipy_on_random_masks_touching_the_border(iterations):
    rng = np.random.default_rng(iterations)
    mask = rng.random((3, 29, 41)) < 0.03
    mask[0, 0, 0] = mask[1, -1, -1] = mask[2, 0, -1] = True  # corners: the border stays 0
    ours = binary_dilation(torch.from_numpy(mask), iterations).numpy()
    np.testing.assert_array_equal(ours, scipy_dilation(mask, iterations))


def test_matches_scipy_on_the_bmx_masks_as_uint8_0_255(clips_dir):
    import cv2  # test-only: read the real masks

    masks = np.stack([cv2.imread(str(clips_dir / "bmx-trees" / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
                      for i in (0, 40)])
    ours = binary_dilation(torch.from_numpy(masks), 4).numpy()
    np.testing.assert_array_equal(ours, scipy_dilation(masks, 4))
    assert ours.sum() > (masks > 0).sum()


def test_single_pixel_grows_into_a_diamond():
    mask = torch.zeros(9, 9, dtype=torch.uint8)
    mask[4, 4] = 255
    out = binary_dilation(mask, 2)
    ys, xs = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    expected = (ys - 4).abs() + (xs - 4).abs() <= 2
    assert torch.equal(out, expected)
    assert out.dtype == torch.bool and int(out.sum()) == 13


def test_zero_iterations_only_binarises_any_nonzero_value():
    # parity: binary_mask(th=0.1) on 0..255 values keeps every nonzero pixel
    mask = torch.tensor([[0.0, 0.004, 1.0], [0.0, 0.0, 0.5]])
    assert binary_dilation(mask, 0).tolist() == [[False, True, True], [False, False, True]]


def test_leading_dimensions_and_non_contiguous_input():
    rng = np.random.default_rng(0)
    mask = rng.random((2, 3, 16, 20)) < 0.05
    flipped = torch.from_numpy(mask).transpose(-1, -2)  # non-contiguous [2, 3, 20, 16]
    ours = binary_dilation(flipped, 3).numpy()
    expected = scipy_dilation(np.ascontiguousarray(mask.swapaxes(-1, -2)).reshape(6, 20, 16), 3)
    np.testing.assert_array_equal(ours.reshape(6, 20, 16), expected)


def test_input_is_not_modified_and_masks_are_the_same():
    mask = torch.zeros(1, 5, 5)
    mask[0, 2, 2] = 1
    flow, hole = dilate_hole_masks(mask, 1)
    assert int(mask.sum()) == 1 and torch.equal(flow, hole) and int(hole.sum()) == 5


@pytest.mark.parametrize("mask, iterations, match", [
    (torch.zeros(4, 4), -1, "iterations must be >= 0"),
    (torch.zeros(4), 1, r"must be \[..., H, W\]"),
])
def test_errors(mask, iterations, match):
    with pytest.raises(ValueError, match=match):
        binary_dilation(mask, iterations)
