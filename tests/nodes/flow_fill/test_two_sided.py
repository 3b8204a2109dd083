"""flow_fill's two recursions: each frame is the mean of a forward and a backward pass over the window.

The carried fill of what no frame shows and the temporal blend are recursions along the motion; run
one way only, a frame's fill depends on which way the clip runs (the first frames are never
steadied, the fill of a never-seen spot is the first frame's guess carried on). The mean of both
directions is a better guess and the same either way.
"""
from __future__ import annotations

import cv2
import numpy as np

from vanish.nodes.ops.flow_fill import FlowFillSettings, dilate_holes, flow_fill_inpaint
from vanish.nodes.ops.flow_fill.spatial_fill import GRAIN_SIGMA, coarse_of_with_grain_of


def _noisy_pan(seed: int, t: int = 10, h: int = 48, w: int = 64, step: int = 2,
               noise: float = 8.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured background panning left, sensor noise on every frame, a square hole moving right.

    Returns the noise-free frames (float32), the noisy frames with the hole painted magenta (uint8)
    and the raw masks.
    """
    rng = np.random.default_rng(seed)
    grains = rng.uniform(0, 255, size=(h, w + step * t, 3)).astype(np.float32)
    canvas = np.clip(cv2.GaussianBlur(grains, (0, 0), 2.0) * 3.0 - 255.0, 0, 255)
    clean = np.stack([canvas[:, i * step:i * step + w] for i in range(t)])
    noisy = np.clip(clean + rng.normal(0, noise, clean.shape), 0, 255).round().astype(np.uint8)
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        masks[i, 16:30, 8 + 3 * i:20 + 3 * i] = True
    noisy[masks] = (255, 0, 255)
    return clean, noisy, masks


def _fill(given: np.ndarray, masks: np.ndarray, two_sided: bool, backwards: bool = False) -> np.ndarray:
    settings = FlowFillSettings(two_sided=two_sided)
    if not backwards:
        return flow_fill_inpaint(given, masks, settings).astype(np.float32)
    out = flow_fill_inpaint(np.ascontiguousarray(given[::-1]), np.ascontiguousarray(masks[::-1]), settings)
    return out[::-1].astype(np.float32)


def test_the_fill_is_the_same_whichever_way_the_clip_runs():
    clean, given, masks = _noisy_pan(seed=0)
    holes = dilate_holes(masks, 4)
    two_sided = np.abs(_fill(given, masks, True) - _fill(given, masks, True, backwards=True))[holes].mean()
    one_way = np.abs(_fill(given, masks, False) - _fill(given, masks, False, backwards=True))[holes].mean()
    assert one_way > 1.5, f"forward only, the two directions differ by {one_way:.2f} levels: not a test of it"
    assert two_sided < 1.0, f"the fill differs by {two_sided:.2f} levels with the direction the clip runs"


def test_the_mean_of_both_directions_is_nearer_the_truth_than_one():
    ratios = []
    for seed in range(3):
        clean, given, masks = _noisy_pan(seed=seed)
        holes = dilate_holes(masks, 4)
        errors = [np.sqrt(((_fill(given, masks, two) - clean)[holes] ** 2).mean()) for two in (True, False)]
        ratios.append(errors[0] / errors[1])
    assert np.mean(ratios) < 0.98, f"two-sided / forward-only error: {np.round(ratios, 3).tolist()}"


def test_the_mean_keeps_one_grain_and_averages_the_coarse_content():
    h, w = 40, 50
    ramp = np.broadcast_to((2.0 * np.arange(w, dtype=np.float32))[None, :, None], (h, w, 3))
    rng = np.random.default_rng(4)
    grain = rng.normal(0, 20, (h, w, 3)).astype(np.float32)
    coarse = ramp + 50.0  # a brighter, grain-free guess of the same content
    grainy = ramp + grain
    ys, xs = np.nonzero(np.pad(np.ones((20, 24), bool), ((10, 10), (13, 13))))
    out = np.array(grainy)
    out[ys, xs] = coarse_of_with_grain_of(coarse, grainy, ys, xs)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), GRAIN_SIGMA, borderType=cv2.BORDER_REPLICATE)

    inner = (slice(14, 26), slice(17, 33))  # far enough from the region's edge for the blur
    # coarse is linear, so it is its own coarse content: what is added to it is grainy's grain, whole
    fine = (grainy - blur(grainy))[inner]
    np.testing.assert_allclose((out - coarse)[inner], fine, atol=0.5)
    assert fine.std() > 10.0  # the grain is most of the noise's 20 levels, not smoothed away


def test_progress_counts_frames_up_to_the_end_over_several_windows():
    clean, given, masks = _noisy_pan(seed=1, t=7)
    calls: list[tuple[int, int]] = []
    flow_fill_inpaint(given, masks, FlowFillSettings(max_propagation=2, segment_length=3),
                      progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 7 and {t for _, t in calls} == {7}
