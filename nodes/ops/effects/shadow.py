"""The shadow test: where the frame is darker than its background and keeps its chromaticity.

A cast shadow takes away the direct light and leaves the ambient light, so a shadowed pixel is
its unshadowed self times a factor below one in every channel: its luminance drops while its
chromaticity (colour per unit luminance) barely moves (sky light makes it a little bluer, hence a
tolerance). A dark object passing by changes the colour too and fails the test.

The region's edge is put where the darkening is half that of the region's core (its
"full width at half maximum"), so a soft penumbra is cut at its middle whatever the light:
that is where a shadow with a 50 % alpha edge ends.

Arrays: frames uint8 ``[H, W, 3]`` RGB, backgrounds float32 ``[H, W, 3]`` 0..255 (NaN = none).
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# Pixels and their background are smoothed by a Gaussian of this sigma (px) before the ratio:
# a shadow is smooth, residual misalignment of texture is not.
SMOOTH_SIGMA = 1.2
# Luminance offset (0..255 levels) that keeps the ratio finite on black pixels.
LUMA_OFFSET = 4.0
# Chromaticity may move this much (max over r, g, b of the change of channel / luminance; that
# is about 3x the change of r / (r + g + b)), plus a term that grows on dark pixels where 8-bit
# noise moves it more.
CHROMA_TOLERANCE = 0.15
CHROMA_NOISE_LEVELS = 7.5
# Residual camera misalignment (px): a pixel must also be darker than the darkest background
# pixel this near, so the dark side of a static edge seen slightly shifted is not evidence.
ALIGNMENT_PX = 4
# Darkening above this is not a shadow (a shadow keeps the ambient light).
MAX_DARKENING = 0.92
# The region's core darkening is this percentile of its pixels' darkening; its edge is at half.
CORE_PERCENTILE = 80
EDGE_FRACTION = 0.5


class ShadowEvidence(NamedTuple):
    """Per-pixel evidence for one frame."""

    darkening: np.ndarray  # [H, W] float32: 1 - luminance / background luminance (0 where no background)
    shadow_like: np.ndarray  # [H, W] bool: darker with the chromaticity kept, background known


def _smooth(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), SMOOTH_SIGMA)


def shadow_evidence(frame: np.ndarray, background: np.ndarray, min_darkening: float) -> ShadowEvidence:
    """Darkening and the shadow test for one frame against its background.

    Args:
        frame: uint8 ``[H, W, 3]``. background: float32 ``[H, W, 3]`` (NaN where unknown).
        min_darkening: a pixel darker than its background by less than this fraction is not
            shadow-like.
    """
    known = np.isfinite(background[..., 0])
    image = _smooth(frame.astype(np.float32))
    bg = _smooth(np.where(known[..., None], background, image))  # unknown pixels borrow the frame
    luma_f = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) + LUMA_OFFSET  # Rec. 601 weights
    luma_b = cv2.cvtColor(bg, cv2.COLOR_RGB2GRAY) + LUMA_OFFSET
    darkening = np.where(known, 1.0 - luma_f / luma_b, 0.0).astype(np.float32)
    chroma_f = image / luma_f[..., None]  # colour per unit luminance: kept under a shadow
    chroma_b = bg / luma_b[..., None]
    change = np.abs(chroma_f - chroma_b).max(-1)
    tolerance = CHROMA_TOLERANCE + CHROMA_NOISE_LEVELS / luma_f
    size = 2 * ALIGNMENT_PX + 1
    darkest_near = cv2.erode(luma_b, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    explained = luma_f >= (1.0 - min_darkening) * darkest_near
    shadow_like = (known & (darkening > min_darkening) & (darkening < MAX_DARKENING) & (change < tolerance)
                   & ~explained)
    return ShadowEvidence(darkening, shadow_like)


def half_depth_regions(evidence: ShadowEvidence, allowed: np.ndarray, seed_darkening: float,
                       min_area: int) -> np.ndarray:
    """Shadow regions: shadow-like components that hold a seed, cut at half their core darkening.

    Args:
        evidence: from :func:`shadow_evidence` (its ``shadow_like`` uses the low threshold).
        allowed: ``[H, W]`` bool, where a region may lie (within reach, off the object).
        seed_darkening: a component needs pixels darker than this to count.
        min_area: components smaller than this (pixels) are dropped.
    Returns:
        ``[H, W]`` bool.
    """
    candidates = evidence.shadow_like & allowed
    out = np.zeros_like(candidates)
    if not candidates.any():
        return out
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates.astype(np.uint8), connectivity=8)
    darkening = evidence.darkening
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, w, h = (stats[label, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                 cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        box = labels[y:y + h, x:x + w] == label
        values = darkening[y:y + h, x:x + w][box]
        if (values > seed_darkening).sum() < min_area:
            continue
        core = float(np.percentile(values, CORE_PERCENTILE))
        keep = box & (darkening[y:y + h, x:x + w] >= EDGE_FRACTION * core)
        out[y:y + h, x:x + w] |= keep
    return out
