"""flow_fill.numeric: scattered bilinear sampling."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.numeric import sample


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
