"""flow_fill.numeric: scattered bilinear sampling, membranes, short channel sums."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vanish.nodes.ops.flow_fill.numeric import channel_sum, local_affine, membrane, sample, squared_length


def _bilinear(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (y - y0)[:, None], (x - x0)[:, None]
    return ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x1])
            + fy * ((1 - fx) * image[y1, x0] + fx * image[y1, x1]))


def test_an_image_taller_than_remap_reads_is_sampled_band_by_band():
    # A window's frames stacked into one tall image (120 frames of 540 rows: 64,800) is more than
    # OpenCV's remap takes (fewer than 32,767 rows): it raised an assertion inside OpenCV.
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 255, (40000, 6, 2)).astype(np.float32)
    y = np.concatenate([rng.uniform(-3, 40003, 3000), [16383.5, 16384.0, 16384.25, 32767.5, 39999.0]])
    x = rng.uniform(-1, 7, y.size)
    got = sample(image, y.astype(np.float32), x.astype(np.float32))
    np.testing.assert_allclose(got, _bilinear(image, y, x), atol=255 / 32 + 1e-3)  # remap's 1/32 px steps
    small = image[:1000]
    inside = y < 999
    np.testing.assert_array_equal(sample(small, y[inside].astype(np.float32), x[inside].astype(np.float32)),
                                  got[inside])  # below the limit: one remap, the same values


def _jacobi(values: np.ndarray, start: np.ndarray, free: np.ndarray, iterations: int) -> np.ndarray:
    """Jacobi steps of the Laplace equation written out: each free pixel becomes its 3x3 mean."""
    out = start.copy()
    for _ in range(iterations):
        padded = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        mean = sum(padded[dy:dy + out.shape[0], dx:dx + out.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
        out[free] = mean[free]
    return out


def test_the_membrane_relaxes_the_free_pixels_only_and_holds_the_fixed_ones():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 5, (37, 51, 2)).astype(np.float32)
    fixed = rng.random((37, 51)) < 0.5
    free = ~fixed
    free[:4] = False  # neither fixed nor free: they keep their first guess and take part in the means
    got = membrane(values, fixed, free, 0)
    np.testing.assert_array_equal(got[fixed], values[fixed])
    relaxed = membrane(values, fixed, free, 25)
    np.testing.assert_array_equal(relaxed[~free], got[~free])
    np.testing.assert_allclose(relaxed, _jacobi(values, got, free, 25), atol=1e-4)
    assert np.abs(relaxed[free] - got[free]).max() > 0.1  # the steps moved them


@pytest.mark.parametrize("shape", [(1000, 2), (13, 17, 3), (5, 4, 6, 3), (7,)])
def test_channel_sums_are_numpys_sums_to_the_last_bit(shape):
    # They stand in for numpy's .sum(-1) in the fill's hot paths, which must give the same fill.
    rng = np.random.default_rng(sum(shape))
    values = (rng.normal(size=shape) * rng.choice([1e-3, 1.0, 1e3], size=shape)).astype(np.float32)
    np.testing.assert_array_equal(channel_sum(values), values.sum(-1))
    np.testing.assert_array_equal(squared_length(values), (values ** 2).sum(-1))


def test_channel_sum_refuses_an_axis_numpy_sums_pairwise():
    with pytest.raises(ValueError, match="fewer than 8"):
        channel_sum(np.zeros((4, 8), np.float32))


def test_a_local_plane_reproduces_a_plane_and_its_ridge_flattens_it_to_the_weighted_mean():
    rng = np.random.default_rng(3)
    h, w = 50, 70
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    plane = np.stack([0.3 * xx - 0.2 * yy + 4.0, -0.1 * xx + 0.05 * yy - 1.0], -1).astype(np.float32)
    fixed = rng.uniform(size=(h, w)) < 0.25
    fixed[:, 40:] = False  # the points on the right are up to 30 px from any fixed pixel
    ys, xs = np.nonzero(~fixed)
    fits, support = local_affine(plane, fixed, ys, xs, sigma=8.0, ridge=1e-6)
    assert support[xs < 30].min() > 0.05 and support[xs >= 65].max() < 0.01
    near = support > 0.01  # further out the float32 sums carry too little weight to be exact
    np.testing.assert_allclose(fits[near], plane[ys, xs][near], atol=0.02)
    # A huge ridge leaves no slope: the Gaussian-weighted mean of the fixed values.
    flat, _ = local_affine(plane, fixed, ys[:5], xs[:5], sigma=8.0, ridge=1e9)
    for k in range(5):
        weight = np.exp(-((yy - ys[k]) ** 2 + (xx - xs[k]) ** 2) / (2 * 8.0 ** 2)) * fixed
        mean = (plane * weight[..., None]).sum((0, 1)) / weight.sum()
        np.testing.assert_allclose(flat[k], mean, atol=0.05)


def test_a_local_plane_polls_the_cancel_between_its_sums():
    from vanish.nodes.ops.flow_fill.settings import InpaintCancelled

    fixed = np.zeros((40, 40), bool)
    fixed[:, :20] = True
    ys, xs = np.nonzero(~fixed)
    polls = []

    def third_poll() -> bool:
        polls.append(1)
        return len(polls) == 3

    with pytest.raises(InpaintCancelled):
        local_affine(np.zeros((40, 40, 2), np.float32), fixed, ys, xs, sigma=12.0, ridge=0.02, should_cancel=third_poll)
    assert len(polls) == 3


def test_wide_gaussian_sums_read_from_shrunk_images_match_the_full_size_blur():
    from vanish.nodes.ops.flow_fill import numeric

    rng = np.random.default_rng(5)
    h, w = 90, 131  # not whole blocks: the padding must read as zeros
    mask = rng.uniform(size=(h, w)) < 0.4
    mask[:, 100:] = False
    images = [mask.astype(np.float32), (rng.normal(size=(h, w)) * mask).astype(np.float32)]
    ys, xs = np.nonzero(np.ones((h, w), bool))
    sigma = 12.0
    assert numeric._shrink_factor(sigma) > 1, "not a test of the shrunk path"
    shrunk = numeric._gaussian_sums(images, ys, xs, sigma)
    full = np.stack([cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)[ys, xs]
                     for image in images], 1)
    # Against the largest value: the Gaussian mass, and a weighted mean of unit noise.
    assert np.abs(shrunk[:, 0] - full[:, 0]).max() < 0.05 * full[:, 0].max()
    assert np.abs(shrunk[:, 0] - full[:, 0]).mean() < 0.005 * full[:, 0].max()
    assert np.abs(shrunk[:, 1] - full[:, 1]).max() < 0.1 * np.abs(full[:, 1]).max()
