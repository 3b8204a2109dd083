"""flow_fill.spatial_fill: the exemplar fill of never-seen pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vanish.nodes.ops.flow_fill.spatial_fill import CORRECTION_KEPT, CarryHistory, carry_and_fill, exemplar_fill


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


def test_pixels_not_carried_take_the_spatial_fill_not_the_previous_frame():
    rng = np.random.default_rng(1)
    h, w = 60, 80
    image = rng.uniform(80, 120, size=(h, w, 3)).astype(np.float32)
    previous = image.copy()
    previous[:, :30] = (250.0, 0.0, 0.0)  # the previous frame: a red thing where the flow leads
    to_previous = np.zeros((h, w, 2), np.float32)
    to_previous[..., 0] = -10.0
    ys, xs = np.nonzero(np.ones((20, 10), bool))
    ys, xs = ys + 20, xs + 32  # carried to x 22..31: mostly onto the red thing
    not_carried = xs - 10 < 31  # all that read a red pixel
    frame = image.copy()
    frame[ys, xs] = 0.0
    history = CarryHistory()
    history.push(previous)
    carry_and_fill(frame, ys, xs, history, to_previous, 5, not_carried=not_carried)
    redness = frame[ys, xs, 0] - frame[ys, xs, 1:].max(1)
    assert (redness[not_carried] > 60).sum() == 0  # filled from the pixels around, not carried
    np.testing.assert_allclose(frame[ys[~not_carried], xs[~not_carried]],
                               previous[ys[~not_carried], xs[~not_carried] - 10])  # carried as before
    frame = image.copy()
    carry_and_fill(frame, ys, xs, history, to_previous, 5)
    assert (frame[ys, xs, 0] - frame[ys, xs, 1:].max(1) > 60).mean() > 0.7  # without it: 8 of 10 columns red


def test_a_frame_too_small_for_a_patch_falls_back_to_telea():
    image = np.full((6, 6, 3), 90.0, np.float32)
    hole = np.zeros((6, 6), bool)
    hole[2:4, 2:4] = True
    image[hole] = 0.0
    exemplar_fill(image, hole)
    assert np.abs(image[hole] - 90.0).max() <= 1.0


def _unseen_texture_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random texture of ~2.5 px grains (std 30 levels around 128) and a 20x24 hole in it."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (72, 88)).astype(np.float32), (0, 0), 2.5)
    texture = (128.0 + 30.0 * noise / noise.std())[..., None].repeat(3, 2).astype(np.float32)
    hole = np.zeros((72, 88), bool)
    hole[26:46, 32:56] = True
    return texture, hole


def _gradient_energy(grey: np.ndarray, where: np.ndarray) -> float:
    gy, gx = np.gradient(grey)
    return float((gx * gx + gy * gy)[where].mean())


def test_an_unseen_random_texture_gets_the_candidates_consensus_with_grain_not_one_pasted_patch():
    """Nothing around the hole predicts its content: the fill should be the best guess, not a copy.

    A single pasted patch is an independent sample of the texture, so its squared error is about
    twice the texture's variance (1.56 x on these four cases with the plain Criminisi fill); the
    mean of many candidates with a membrane is near the texture's mean (0.81 x). The grain keeps
    the fill textured: a smooth membrane (Telea) has 0.29 of the surroundings' gradient energy,
    this fill 0.63.
    """
    errors, energies = [], []
    for seed in range(4):
        texture, hole = _unseen_texture_case(seed)
        image = texture.copy()
        image[hole] = 0.0
        exemplar_fill(image, hole)
        errors.append(((image[hole] - texture[hole]) ** 2).mean() / texture[~hole].var())
        energies.append(_gradient_energy(image.mean(-1), hole) / _gradient_energy(texture.mean(-1), ~hole))
    assert np.mean(errors) < 1.1, f"squared error {np.mean(errors):.2f} x the texture's variance"
    assert np.mean(energies) > 0.45, f"{np.mean(energies):.0%} of the surroundings' gradient energy: a smooth fill"


def test_candidates_1_without_membrane_or_grain_is_the_plain_exemplar_fill():
    """The blend's knobs at their neutral values leave the single best patches' copy exactly."""
    texture, hole = _unseen_texture_case(0)
    plain = texture.copy()
    plain[hole] = 0.0
    blended = plain.copy()
    exemplar_fill(plain, hole, candidates=1, membrane_weight=0.0, grain_sigma=None)
    exemplar_fill(blended, hole)
    copied = plain[hole]
    # Every pixel of the plain fill is a copy of some known pixel (values from the texture).
    known = np.unique(texture[~hole][:, 0])
    assert np.isin(copied[:, 0], known).all()
    assert not np.isin(blended[hole][:, 0], known).all()  # the default blends


def test_a_part_of_the_patch_mean_made_again_gives_the_floats_of_the_whole():
    from vanish.nodes.ops.flow_fill.spatial_fill import _patch_mean

    rng = np.random.default_rng(4)
    values = rng.random((37, 53)).astype(np.float32)
    whole = _patch_mean(values, 4)
    np.testing.assert_allclose(whole, cv2.blur(values, (9, 9), borderType=cv2.BORDER_CONSTANT), atol=1e-6)
    for part in ((0, 10, 0, 12), (5, 30, 20, 53), (30, 37, 40, 53), (12, 13, 7, 8)):
        y0, y1, x0, x1 = part
        np.testing.assert_array_equal(_patch_mean(values, 4, part), whole[y0:y1, x0:x1])


def test_the_fill_front_kept_patch_by_patch_picks_what_the_whole_plane_would():
    # The front and its priorities are made again only around each copied patch; the pixel picked
    # next must be the one an argmax over priorities made anew over the whole plane picks.
    from vanish.nodes.ops.flow_fill.spatial_fill import _FLAT_PRIORITY, _FillFront, _patch_mean

    rng = np.random.default_rng(5)
    h, w, half = 70, 90, 4
    todo = np.zeros((h, w), bool)
    todo[10:60, 15:80] = True
    todo[0:20, 0:8] = True  # a part at the plane's edge
    confidence = (~todo).astype(np.float32)
    structure = (rng.random((h, w)) * ~todo).astype(np.float32)
    structure[:, 40:45] = 0.0  # flat: equal priorities, ties go to the first in raster order
    front = _FillFront(todo, confidence, structure, half)
    for _ in range(60):
        touches = cv2.dilate((~todo).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        priority = np.where(todo & touches, _patch_mean(confidence, half) * (_patch_mean(structure, half)
                                                                             + _FLAT_PRIORITY), -1.0)
        expected = np.unravel_index(int(priority.argmax()), priority.shape)
        assert front.best() == tuple(int(v) for v in expected)
        cy, cx = expected
        region = (slice(max(0, cy - half), cy + half + 1), slice(max(0, cx - half), cx + half + 1))
        written = todo[region].copy()
        confidence[region][written] = front.confidence_at(cy, cx)
        structure[region][written] = rng.random(int(written.sum())).astype(np.float32)
        todo[region] = False
        front.filled(region, int(written.sum()))


def test_a_cancel_requested_before_the_membrane_stops_the_fill_before_it(monkeypatch):
    # Over a large hole the membrane alone takes about half a second: the cancel is polled before it.
    from vanish.nodes.ops.flow_fill import spatial_fill
    from vanish.nodes.ops.flow_fill.settings import InpaintCancelled

    made = []
    monkeypatch.setattr(spatial_fill, "_membrane", lambda box, unknown: made.append(1) or box.copy())
    rng = np.random.default_rng(6)
    image = rng.uniform(0, 255, (60, 80, 3)).astype(np.float32)
    hole = np.zeros((60, 80), bool)
    hole[20:40, 25:50] = True
    with pytest.raises(InpaintCancelled):
        exemplar_fill(image, hole, should_cancel=lambda: True)
    assert not made
    exemplar_fill(image, hole, should_cancel=lambda: False)
    assert made


def test_the_membrane_of_a_huge_hole_is_made_smaller_still(monkeypatch):
    # Telea's one call cannot be cancelled: over a fifth of a 4K frame at half size it took 2.2 s. Where
    # the small image would hide more than MEMBRANE_PIXELS, the scale doubles until it does not.
    from vanish.nodes.ops.flow_fill import spatial_fill

    sizes = []
    inpaint = cv2.inpaint

    def spy(image, mask, radius, flags):
        sizes.append((image.shape[:2], radius))
        return inpaint(image, mask, radius, flags)

    monkeypatch.setattr(spatial_fill.cv2, "inpaint", spy)
    h, w = 120, 160
    box = np.broadcast_to(np.linspace(20, 220, w, dtype=np.float32)[None, :, None], (h, w, 3)).copy()
    unknown = np.zeros((h, w), bool)
    unknown[30:90, 40:120] = True  # 4,800 px
    half = spatial_fill._membrane(box, unknown)
    monkeypatch.setattr(spatial_fill, "MEMBRANE_PIXELS", 4800 // 16)  # 2 is too little, 4 fits
    smaller = spatial_fill._membrane(box, unknown)
    assert sizes[0] == ((60, 80), spatial_fill.MEMBRANE_RADIUS // 2)
    assert sizes[1] == ((30, 40), spatial_fill.MEMBRANE_RADIUS // 4)
    # Still the same smooth membrane across the hole, within a few levels (a ramp of 200 levels).
    assert np.abs(smaller[unknown] - half[unknown]).mean() < 4
    assert np.abs(smaller[unknown] - box[unknown]).mean() < 1.5 * np.abs(half[unknown] - box[unknown]).mean()


def test_deep_inside_a_large_hole_sources_are_searched_around_the_nearest_known_patch(monkeypatch):
    # The search window used to grow around such a target until it reached a known patch: at
    # 1920x1080 windows of up to 369 px a side, most of them hole, two thirds of the fill's time.
    from vanish.nodes.ops.flow_fill import spatial_fill

    sides = []
    match = cv2.matchTemplate

    def spy(region, target, method, mask=None):
        sides.append(max(region.shape[:2]))
        return match(region, target, method, mask=mask)

    monkeypatch.setattr(spatial_fill.cv2, "matchTemplate", spy)
    rng = np.random.default_rng(8)
    h = w = 200
    image = np.where(np.arange(h)[:, None, None] < h // 2, rng.uniform(60, 100, (h, w, 3)),
                     rng.uniform(160, 200, (h, w, 3))).astype(np.float32)
    hole = np.zeros((h, w), bool)
    hole[40:160, 40:160] = True  # 120 px: its middle is over 45 px (5 patches) from any known patch
    filled = image.copy()
    filled[hole] = 0.0
    exemplar_fill(filled, hole)
    local = 2 * spatial_fill._LOCAL_PATCHES * spatial_fill.PATCH + spatial_fill.PATCH
    assert len(sides) > 100 and max(sides) <= local
    assert filled[40:70, 40:160].mean() < 110  # the dark top goes on down into the hole
    assert filled[130:160, 40:160].mean() > 150  # the bright bottom up into it


def _smooth_texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    return (128.0 + 40.0 * noise / noise.std())[..., None].repeat(3, 2).astype(np.float32)


def test_a_pixel_carried_twice_is_sampled_once_where_it_came_from_plus_most_of_the_correction():
    from vanish.nodes.ops.flow_fill.numeric import sample

    first = _smooth_texture(40, 50, 0)
    history = CarryHistory()
    history.push(first)
    ys, xs = (a.ravel() + 12 for a in np.mgrid[:10, :14])
    # First carry, from pixels that are their own origin: a sample of the first frame there.
    colours, origins = history.carry(ys + 0.5, xs + 0.3)
    np.testing.assert_array_equal(colours, sample(first, ys + 0.5, xs + 0.3))
    second = first.copy()
    second[ys, xs] = colours + 10.0  # what a later stage (the boundary match) adds to the carried colour
    history.push(second, ys, xs, origins)
    # Second carry: the nearest pixels are the carried ones; the colour is the first frame's at the
    # composed position (0.5 + 0.4, 0.3 + 0.25), plus the correction, not a sample of a sample.
    colours, (number, oy, ox, sampled) = history.carry(ys + 0.4, xs + 0.25)
    np.testing.assert_allclose(oy, ys + 0.9, atol=1e-5)
    np.testing.assert_allclose(ox, xs + 0.55, atol=1e-5)
    np.testing.assert_array_equal(sampled, sample(first, oy, ox))
    inner = (ys < ys.max()) & (xs < xs.max())  # the correction is read bilinearly: within the carried block
    np.testing.assert_allclose(colours[inner], sampled[inner] + CORRECTION_KEPT * 10.0, atol=1e-4)
    resampled = sample(second, ys + 0.4, xs + 0.25)  # the carry's old way: a sample of the carried sample
    assert np.abs(resampled - colours).mean() > 1.0


def test_beyond_its_origin_frames_the_origin_the_fewest_pixels_share_is_dropped():
    from vanish.nodes.ops.flow_fill.numeric import sample

    frames = [_smooth_texture(40, 50, seed) for seed in range(3)]
    history = CarryHistory(origin_frames=2)
    history.push(frames[0])
    many = tuple(a.ravel() + 5 for a in np.mgrid[:10, :10])   # 100 pixels carried from frame 0
    few = tuple(a.ravel() + 25 for a in np.mgrid[:3, :3])     # 9 pixels, carried from frame 1 on
    colours, origins = history.carry(many[0] + 0.5, many[1] + 0.5)
    second = frames[1].copy()
    second[many] = colours
    history.push(second, *many, origins)
    assert history.frames_kept() == 2
    # The third frame's carried pixels come from two origins: frame 0 (100) and frame 1 (9).
    qy = np.concatenate([many[0], few[0]]) + 0.5
    qx = np.concatenate([many[1], few[1]]) + 0.5
    colours, origins = history.carry(qy, qx)
    assert sorted(np.unique(origins[0], return_counts=True)[1].tolist()) == [9, 100]
    third = frames[2].copy()
    both = (np.concatenate([many[0], few[0]]), np.concatenate([many[1], few[1]]))
    third[both] = colours
    history.push(third, *both, origins)
    assert history.frames_kept() == 2  # frame 0 (the many's origin) and the newest; frame 1 is gone
    colours, (number, _, _, _) = history.carry(few[0] + 0.25, few[1] + 0.25)
    np.testing.assert_array_equal(colours, sample(third, few[0] + 0.25, few[1] + 0.25))  # their own origin now
