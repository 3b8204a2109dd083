"""The Effects Mask node and its weights-free finder, on hand-made clips with known answers.

Clips: a smooth textured ground under a still camera, a bright square object moving right by
3 px a frame, and dark squares (the ground times 0.5, colour kept) that either move with it
(a shadow) or stay (a tree's shadow, dark paint).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vanish.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from vanish.nodes._errors import VanishError
from vanish.nodes.compositing import VanishCompositeFrames
from vanish.nodes.effects import VanishEffectsMask
from vanish.nodes.ops.effects import (QUAD_AFFECTED, QUAD_KEEP, QUAD_OBJECT, QUAD_OVERLAP, EffectsSettings,
                                      context_frames, find_effects, find_effects_window, quadmask)
from vanish.nodes.ops.effects import background as bg_mod

T, H, W = 20, 64, 96
SIZE = 12  # object and shadow side (px)
SPEED = 3  # px per frame


def _ground(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    import cv2
    noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.0)
    grey = 150 + 60 * noise / (np.abs(noise).max() + 1e-6)
    return np.stack([grey, grey * 0.95, grey * 0.85], -1).astype(np.float32)  # [H, W, 3]


def _clip(shadow: str = "moving", frames: int = T, h: int = H, w: int = W, x0: int = 8, y0: int = 14
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 frames [T, H, W, 3], object masks and true shadow masks (bool [T, H, W])."""
    ground = _ground(h, w)
    out, objs, shadows = [], [], []
    for t in range(frames):
        img = ground.copy()
        obj = np.zeros((h, w), bool)
        sh = np.zeros((h, w), bool)
        x = x0 + SPEED * t
        obj[y0:y0 + SIZE, x:x + SIZE] = True
        if shadow == "moving":
            sh[y0 + SIZE:y0 + 2 * SIZE, x:x + SIZE] = True
        elif shadow == "static":
            sh[y0 + SIZE:y0 + 2 * SIZE, 40:40 + SIZE] = True
        img[sh] *= 0.5
        img[obj] = (230, 60, 40)
        out.append(np.clip(img, 0, 255).round().astype(np.uint8))
        objs.append(obj)
        shadows.append(sh & ~obj)
    return np.stack(out), np.stack(objs), np.stack(shadows)


def _image(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).float() / 255.0


def _run(frames, objs, **kw):
    params = {"effects": "shadow", "sensitivity": 0.5, "max_reach": 40, "enabled": True} | kw
    return VanishEffectsMask().find(_image(frames), torch.from_numpy(objs).float(), **params)


# --------------------------------------------------------------------------- registration
def test_registered_with_tooltips():
    assert NODE_DISPLAY_NAME_MAPPINGS["VanishEffectsMask"] == "Effects Mask"
    cls = NODE_CLASS_MAPPINGS["VanishEffectsMask"]
    assert cls.CATEGORY == "Vanish/mask" and cls.DESCRIPTION
    for group in ("required", "optional"):
        for spec in cls.INPUT_TYPES()[group].values():
            assert spec[1].get("tooltip")
    assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES) == 4


# --------------------------------------------------------------------------- behaviour
def test_dark_square_moving_with_the_object_is_found():
    frames, objs, truth = _clip("moving")
    grown, effects, preview, quad = _run(frames, objs)
    fx = effects.numpy() > 0.5
    assert not (fx & objs).any()  # never on the object
    for t in range(T):
        assert fx[t][truth[t]].mean() >= 0.9, t  # the shadow is found in every frame
        near = np.zeros_like(truth[t])
        ys, xs = np.nonzero(truth[t])
        near[ys.min() - 3:ys.max() + 4, xs.min() - 3:xs.max() + 4] = True
        assert not (fx[t] & ~near).any(), t  # and nothing else
    assert torch.equal(grown, torch.maximum(torch.from_numpy(objs).float(), effects))
    assert preview.shape == (T, H, W, 3)


def test_dark_square_that_stays_is_not_found():
    frames, objs, _ = _clip("static")
    _, effects, _, _ = _run(frames, objs)
    assert float(effects.sum()) == 0.0


def test_object_without_shadow_gives_empty_effects():
    frames, objs, _ = _clip("none")
    grown, effects, _, quad = _run(frames, objs)
    assert float(effects.sum()) == 0.0
    assert torch.equal(grown, torch.from_numpy(objs).float())
    assert set(quad.unique().tolist()) == {QUAD_OBJECT, QUAD_KEEP}


def test_shadow_leaving_the_frame():
    # starts at x=60: the object reaches the right edge at frame 8 and leaves by frame 12
    frames, objs, truth = _clip("moving", frames=16, x0=60)
    _, effects, _, _ = _run(frames, objs)
    fx = effects.numpy() > 0.5
    for t in range(16):
        if truth[t].sum() >= SIZE * 3:  # at least three columns of shadow left in view
            assert fx[t][truth[t]].mean() >= 0.8, t
        if not objs[t].any():
            assert not fx[t].any(), t  # no object, no effects
        assert not (fx[t] & ~truth[t]).sum() > SIZE * 4, t


def test_all_zero_object_mask_is_empty_without_any_work(monkeypatch):
    frames, _, _ = _clip("moving")
    monkeypatch.setattr(bg_mod, "camera_path", lambda *a, **k: pytest.fail("camera motion was fitted"))
    grown, effects, preview, quad = _run(frames, np.zeros((T, H, W), bool))
    assert float(grown.sum()) == 0.0 and float(effects.sum()) == 0.0
    assert bool((quad == QUAD_KEEP).all())
    torch.testing.assert_close(preview, _image(frames))


def test_disabled_passes_the_mask_through():
    frames, objs, _ = _clip("moving")
    soft = torch.from_numpy(objs).float() * 0.8
    grown, effects, _, _ = VanishEffectsMask().find(_image(frames), soft, "shadow", 0.5, 40, enabled=False)
    assert torch.equal(grown, soft) and float(effects.sum()) == 0.0


def test_window_with_context_equals_whole_clip():
    frames, objs, _ = _clip("moving", frames=30)
    settings = EffectsSettings(max_reach=40, offsets=(-6, -3, 3, 6))
    whole = find_effects(frames, objs, settings)
    c = context_frames(settings)
    assert c == 7
    start, stop = 12, 16
    lo, hi = start - c, stop + c
    part = find_effects_window(frames[lo:hi], objs[lo:hi], start - lo, stop - lo, settings)
    assert whole[start:stop].any()
    assert np.array_equal(part, whole[start:stop])


def test_reflection_mode_finds_the_mirror_image():
    h, w, frames_n = 64, 96, 16
    ground = _ground(h, w, seed=3) * 0.5 + 90
    out, objs, truth = [], [], []
    look = np.zeros((16, 8, 3), np.float32)
    look[:8] = (230, 40, 40)
    look[8:] = (40, 60, 220)  # two colours so the mirror image is told from a plain blob
    for t in range(frames_n):
        img = ground.copy()
        obj = np.zeros((h, w), bool)
        x = 10 + 4 * t
        obj[10:26, x:x + 8] = True
        img[10:26, x:x + 8] = look
        img[26:42, x:x + 8] = 0.6 * img[26:42, x:x + 8] + 0.4 * look[::-1]
        ref = np.zeros((h, w), bool)
        ref[26:42, x:x + 8] = True
        out.append(np.clip(img, 0, 255).round().astype(np.uint8))
        objs.append(obj)
        truth.append(ref)
    frames, objs, truth = np.stack(out), np.stack(objs), np.stack(truth)
    _, effects, _, _ = _run(frames, objs, effects="reflection")
    fx = effects.numpy() > 0.5
    iou = (fx & truth).sum() / (fx | truth).sum()
    assert iou >= 0.8


# --------------------------------------------------------------------------- shapes and errors
def test_odd_sizes_and_one_frame():
    frames, objs, _ = _clip("moving", frames=6, h=37, w=53, x0=2, y0=5)
    grown, effects, preview, quad = _run(frames, objs)
    assert grown.shape == effects.shape == quad.shape == (6, 37, 53)
    assert preview.shape == (6, 37, 53, 3)
    grown, effects, preview, quad = _run(frames[:1], objs[:1])
    assert grown.shape == (1, 37, 53) and float(effects.sum()) == 0.0  # no neighbour: no background


def test_single_mask_is_used_for_every_frame():
    frames, objs, _ = _clip("none", frames=4)
    grown, _, _, _ = VanishEffectsMask().find(_image(frames), torch.from_numpy(objs[:1]).float(), "shadow", 0.5, 40)
    assert grown.shape == (4, H, W)


def test_mask_of_another_size_is_a_clear_error():
    frames, objs, _ = _clip("moving", frames=4)
    with pytest.raises(VanishError, match=r"Effects Mask: input 'mask' is 48x64 but 'frames' is 96x64"):
        VanishEffectsMask().find(_image(frames), torch.zeros(4, 64, 48), "shadow", 0.5, 40)
    with pytest.raises(VanishError, match=r"input 'mask' has 3 frames but 'frames' has 4"):
        VanishEffectsMask().find(_image(frames), torch.zeros(3, H, W), "shadow", 0.5, 40)


def test_nan_frames_are_a_clear_error():
    frames, objs, _ = _clip("moving", frames=4)
    image = _image(frames)
    image[1, 3, 3, 0] = float("nan")
    with pytest.raises(VanishError, match=r"Effects Mask: input 'frames' contains NaN"):
        VanishEffectsMask().find(image, torch.from_numpy(objs).float(), "shadow", 0.5, 40)


def test_bad_effects_choice_and_model_are_clear_errors():
    frames, objs, _ = _clip("moving", frames=3)
    with pytest.raises(VanishError, match=r"input 'effects' is 'smoke'"):
        VanishEffectsMask().find(_image(frames), torch.from_numpy(objs).float(), "smoke", 0.5, 40)
    with pytest.raises(VanishError, match=r"input 'sam2_model' must come from SAM 2 Model Loader"):
        VanishEffectsMask().find(_image(frames), torch.from_numpy(objs).float(), "shadow", 0.5, 40,
                                 sam2_model="model.pt")


# --------------------------------------------------------------------------- quadmask
def _core_void_preprocess(mask: torch.Tensor) -> torch.Tensor:
    """What ComfyUI core's VOIDQuadmaskPreprocess does with dilate_width 0 (comfy_extras/nodes_void.py):
    scale a 0..1 mask to 0..255, snap to 0/63/127/255 (thresholds 31, 95, 191), invert, /255."""
    m = mask * 255.0 if mask.max() <= 1.0 else mask.clone()
    m = torch.where(m <= 31, torch.zeros_like(m), m)
    m = torch.where((m > 31) & (m <= 95), torch.full_like(m, 63), m)
    m = torch.where((m > 95) & (m <= 191), torch.full_like(m, 127), m)
    m = torch.where(m > 191, torch.full_like(m, 255), m)
    return (255.0 - m) / 255.0


def test_quadmask_levels_and_layout_match_core_void():
    obj = torch.zeros(2, 4, 5, dtype=torch.bool)
    fx = torch.zeros(2, 4, 5, dtype=torch.bool)
    obj[:, 0, :3] = True
    fx[:, 0, 2:] = True  # overlaps the object at column 2
    fx[:, 1, :] = True
    q = quadmask(obj, fx)
    assert q.shape == (2, 4, 5) and q.dtype == torch.float32
    assert q[0, 0, 0] == QUAD_OBJECT == 0.0
    assert q[0, 0, 2] == QUAD_OVERLAP == 63 / 255
    assert q[0, 0, 4] == QUAD_AFFECTED == 127 / 255 and q[0, 1, 0] == QUAD_AFFECTED
    assert q[0, 3, 0] == QUAD_KEEP == 1.0
    # through core's preprocessing every level lands on its own class, unchanged by the snapping
    processed = _core_void_preprocess(q)
    torch.testing.assert_close(processed[0, 0, 0], torch.tensor(1.0))          # remove
    torch.testing.assert_close(processed[0, 0, 2], torch.tensor(192 / 255))    # overlap
    torch.testing.assert_close(processed[0, 0, 4], torch.tensor(128 / 255))    # affected
    torch.testing.assert_close(processed[0, 3, 0], torch.tensor(0.0))          # keep
    assert torch.equal((q * 255).round(), torch.where(processed == 1, 0.0, 255 - processed * 255).round())


def test_node_quadmask_marks_object_and_effects():
    frames, objs, truth = _clip("moving")
    _, effects, _, quad = _run(frames, objs)
    assert bool((quad[torch.from_numpy(objs)] == QUAD_OBJECT).all())
    assert bool((quad[effects > 0.5] == QUAD_AFFECTED).all())
    assert bool((quad[(effects == 0) & ~torch.from_numpy(objs)] == QUAD_KEEP).all())


# --------------------------------------------------------------------------- composite
def test_effects_never_change_pixels_outside_the_final_mask_through_composite():
    frames, objs, _ = _clip("moving")
    grown, effects, _, _ = _run(frames, objs)
    original = _image(frames)
    fill = torch.rand(original.shape, generator=torch.Generator().manual_seed(0))
    (out,) = VanishCompositeFrames().composite(original=original, fill=fill, mask=grown, color_match=True,
                                            ring_width=8)
    outside = (grown == 0).unsqueeze(-1).expand_as(out)
    assert torch.equal(out[outside], original[outside])
    inside = (effects > 0.5).unsqueeze(-1).expand_as(out)
    assert not torch.equal(out[inside], original[inside])  # the shadow itself is replaced


# --------------------------------------------------------------------------- SAM 2 refinement
def test_sam2_refinement_plumbing_with_random_weights():
    from sam2_testing import handle_for, tiny_predictor
    from vanish.nodes.ops.effects.sam2_refine import EFFECTS_ID, OBJECT_ID, effects_prompts

    frames, objs, truth = _clip("moving", frames=8)
    prompts = effects_prompts(truth, objs)
    assert [o.id for o in prompts.objects] == [OBJECT_ID, EFFECTS_ID]
    first = prompts.objects[1].frames[min(prompts.objects[1].frames)]
    x0, y0, x1, y1 = first.boxes[0]
    assert (x1 - x0, y1 - y0) == (SIZE, SIZE) and len(first.positive) == 1 and len(first.negative) == 1
    prompts.validate(8, (W, H))
    grown, effects, preview, quad = _run(frames, objs, sam2_model=handle_for(tiny_predictor()))
    assert grown.shape == effects.shape == (8, H, W) and preview.shape == (8, H, W, 3)
    fx = effects.numpy() > 0.5
    assert not (fx & objs).any()  # random weights draw a random mask, but never on the object
    import cv2
    for t in range(8):  # and never beyond reach
        distance = cv2.distanceTransform((~objs[t]).astype(np.uint8), cv2.DIST_L2, 5)
        assert (distance[fx[t]] <= 40).all()


def test_cancel_is_honoured_between_frames():
    from vanish.nodes.ops.effects import EffectsCancelled

    frames, objs, _ = _clip("moving", frames=10)
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(EffectsCancelled):
        find_effects(frames, objs, EffectsSettings(max_reach=40), should_cancel=should_cancel)
    assert len(calls) == 4  # stopped at the first poll that said so


def test_shipped_demo_clip_shows_a_shadow_that_is_found():
    import av

    from shared_paths import ROOT

    def read(name: str, count: int = 12) -> np.ndarray:
        with av.open(str(ROOT / "examples" / name)) as container:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]
        return np.stack(frames)

    frames = read("vanish_shadow_demo.mp4")
    objs = read("vanish_shadow_demo_mask.mp4").max(-1) > 127
    assert frames.shape == (12, 240, 432, 3) and objs.any(axis=(1, 2)).all()
    _, effects, _, _ = VanishEffectsMask().find(_image(frames), torch.from_numpy(objs).float(), "shadow", 0.5, 96)
    area = effects.sum(dim=(1, 2))
    object_area = torch.from_numpy(objs).sum(dim=(1, 2))
    assert bool((area > 0.15 * object_area).all())  # the car's shadow (about a quarter of it), every frame
