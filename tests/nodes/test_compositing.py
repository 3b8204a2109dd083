"""Composite Frames: bit-exact outside the mask at any fill resolution, crops, colour match, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vanish.nodes import _comfy
from vanish.nodes._errors import VanishError
from vanish.nodes.compositing import NODE_CLASS_MAPPINGS, VanishCompositeFrames
from vanish.nodes.ops import composite_ops, mask_ops
from vanish.nodes.ops.composite_ops import CropRegion

NODE = "Composite Frames"


def _tennis(clips_dir, count: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``[count, 240, 432, 3]`` frames and ``[count, 240, 432]`` masks in 0..1."""
    folder = clips_dir / "tennis"
    frames = np.stack([cv2.imread(str(folder / "frames" / f"{i:05d}.png"))[..., ::-1] for i in range(count)])
    masks = np.stack([cv2.imread(str(folder / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(count)])
    return torch.from_numpy(frames.copy()).float() / 255.0, torch.from_numpy(masks).float() / 255.0


def _composite(original, fill, mask, color_match=False, ring_width=16, crop=None):
    return VanishCompositeFrames().composite(original, fill, mask, color_match, ring_width, crop=crop)[0]


def _assert_untouched(out, original, mask):
    keep = (mask == 0).expand(out.shape[:3])  # [T, H, W]
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.equal(out[keep], original.float().cpu()[keep])


@pytest.mark.parametrize("fill_size", [(240, 432), (120, 216), (480, 864), (177, 301)])
def test_bit_exact_outside_mask_for_fill_at_any_resolution(clips_dir, fill_size):
    original, masks = _tennis(clips_dir)
    fill = torch.rand(3, *fill_size, 3, generator=torch.Generator().manual_seed(1))
    out = _composite(original, fill, masks)
    _assert_untouched(out, original, masks)
    changed = masks > 0
    assert not torch.equal(out[changed], original[changed])
    if fill_size == (240, 432):  # same size: inside the (binary) mask it is the fill, exactly
        assert torch.equal(out[changed], fill[changed])


def test_soft_mask_blends_and_stays_exact_where_zero(clips_dir):
    original, masks = _tennis(clips_dir)
    soft = mask_ops.feather(mask_ops.dilate(masks, 3), 2.0)
    fill = torch.zeros(3, 240, 432, 3)
    out = _composite(original, fill, soft)
    _assert_untouched(out, original, soft)
    assert torch.allclose(out, original * (1 - soft[..., None]), atol=1e-6)  # lerp towards a black fill


@pytest.mark.parametrize("fill_size", [(60, 80), (30, 40)])
def test_crop_fill_is_pasted_into_untouched_original(clips_dir, fill_size):
    original, _ = _tennis(clips_dir, 2)
    crop = {"x": 100, "y": 50, "width": 80, "height": 60}
    masks = torch.zeros(2, 240, 432)
    masks[:, 60:100, 110:170] = 1.0
    fill = torch.rand(2, *fill_size, 3)
    out = _composite(original, fill, masks, crop=crop)
    _assert_untouched(out, original, masks)
    if fill_size == (60, 80):  # crop-sized fill: mask pixels take it exactly at their crop position
        assert torch.equal(out[:, 60:100, 110:170], fill[:, 10:50, 10:70])


def test_crop_ignores_mask_outside_the_rectangle(clips_dir):
    original, masks = _tennis(clips_dir, 1)
    out = _composite(original, torch.rand(1, 20, 20, 3), torch.ones(1, 240, 432),
                     crop=CropRegion(x=10, y=10, width=20, height=20))
    outside = torch.ones(1, 240, 432)
    outside[:, 10:30, 10:30] = 0
    _assert_untouched(out, original, 1 - outside)
    assert not torch.equal(out[:, 10:30, 10:30], original[:, 10:30, 10:30])


def test_fp16_gpu_style_inputs(clips_dir):
    original, masks = _tennis(clips_dir, 2)
    out = _composite(original.half(), torch.rand(2, 120, 216, 3).half(), masks.half())
    _assert_untouched(out, original.half(), masks)


def test_background_replacement_reuses_single_fill_frame(clips_dir):
    original, masks = _tennis(clips_dir, 3)
    background = torch.rand(1, 100, 180, 3)
    inverted = 1.0 - masks               # keep the subject, replace everything else
    out = _composite(original, background, inverted)
    _assert_untouched(out, original, inverted)
    resized = composite_ops.resize_frame(background[0], 240, 432)
    everywhere = inverted == 1
    assert torch.equal(out[0][everywhere[0]], resized[everywhere[0]])
    assert torch.equal(out[2][everywhere[2]], resized[everywhere[2]])


def test_odd_size_running_car_with_logo_mask(clips_dir):
    folder = clips_dir / "running_car"
    capture = cv2.VideoCapture(str(folder / "running_car.mp4"))
    frames = []
    for _ in range(2):
        ok, frame = capture.read()
        assert ok
        frames.append(frame[..., ::-1])
    capture.release()
    original = torch.from_numpy(np.stack(frames).copy()).float() / 255.0          # [2, 540, 972, 3]
    logo = cv2.resize(cv2.imread(str(folder / "mask_logo.png"), cv2.IMREAD_GRAYSCALE), (972, 540),
                      interpolation=cv2.INTER_AREA)
    mask = torch.from_numpy(logo).float()[None] / 255.0                            # soft, one for all
    out = _composite(original, torch.rand(2, 240, 432, 3), mask)
    assert out.shape == (2, 540, 972, 3)
    _assert_untouched(out, original, mask)


def test_single_frame_clip():
    original = torch.rand(1, 7, 5, 3)
    mask = torch.zeros(7, 5)
    mask[3, 2] = 0.5
    out = _composite(original, torch.ones(1, 3, 3, 3), mask)
    _assert_untouched(out, original, mask[None])
    assert torch.allclose(out[0, 3, 2], (original[0, 3, 2] + 1) / 2)


def test_color_match_removes_a_colour_cast():
    generator = torch.Generator().manual_seed(3)
    original = torch.rand(1, 40, 40, 3, generator=generator) * 0.5 + 0.2
    mask = torch.zeros(1, 40, 40)
    mask[:, 15:25, 15:25] = 1.0
    cast = original * torch.tensor([0.8, 1.0, 1.25]) + torch.tensor([0.1, -0.05, 0.0])  # gains within the clamp
    plain = _composite(original, cast, mask)
    matched = _composite(original, cast, mask, color_match=True, ring_width=6)
    inside = mask[0] > 0
    assert (plain[0][inside] - original[0][inside]).abs().max() > 0.05
    assert torch.allclose(matched[0][inside], original[0][inside], atol=1e-4)
    _assert_untouched(matched, original, mask)


def test_crop_region_reads_dicts_and_rejects_bad_values():
    assert CropRegion.from_value({"x": 1, "y": 2, "width": 3, "height": 4}) == CropRegion(1, 2, 3, 4)
    for bad in ({"x": 1, "y": 2, "width": 3}, {"x": -1, "y": 0, "width": 3, "height": 3}, "10,10,5,5",
                {"x": "a", "y": 0, "width": 3, "height": 3}):
        with pytest.raises(ValueError):
            CropRegion.from_value(bad)


@pytest.mark.parametrize("make, needle", [
    (lambda o, f, m: (o, f, m[:2]), "input 'mask' has 2 frames but 'original' has 3"),
    (lambda o, f, m: (o, f, m[:, :100]), "input 'mask' is 432x100 but 'original' is 432x240"),
    (lambda o, f, m: (o, f[:2], m), "input 'fill' has 2 frames but 'original' has 3"),
    (lambda o, f, m: (torch.cat([o, o[..., :1]], -1), f, m), "input 'original' has 4 channels (RGBA)"),
    (lambda o, f, m: (o, f[..., :1], m), "input 'fill' has 1 channel (greyscale)"),
    (lambda o, f, m: (o, f.clone().fill_(float("nan")), m), "input 'fill' contains NaN"),
    (lambda o, f, m: (o * 255, f, m), "input 'original' has values from"),
])
def test_bad_input_names_node_input_and_fix(clips_dir, make, needle):
    original, masks = _tennis(clips_dir, 3)
    args = make(original, torch.rand(3, 60, 108, 3), masks)
    with pytest.raises(VanishError) as info:
        _composite(*args)
    text = str(info.value)
    assert text.startswith(NODE + ": ") and needle in text and "Fix:" in text


@pytest.mark.parametrize("crop, needle", [
    ({"x": 400, "y": 0, "width": 64, "height": 64}, "reaches outside the 432x240 original"),
    ({"x": 0, "y": 0}, "is not a valid crop region"),
])
def test_bad_crop(clips_dir, crop, needle):
    original, masks = _tennis(clips_dir, 1)
    with pytest.raises(VanishError, match="input 'crop'") as info:
        _composite(original, torch.rand(1, 8, 8, 3), masks, crop=crop)
    assert needle in str(info.value)


def test_single_mask_broadcasts_and_cancel_is_honoured(comfy):
    original = torch.rand(3, 6, 6, 3)
    mask = torch.zeros(1, 6, 6)
    mask[0, 2, 2] = 1.0
    out = _composite(original, torch.zeros(3, 6, 6, 3), mask)
    assert torch.equal(out[:, 2, 2], torch.zeros(3, 3))
    _comfy.request_cancel(True)
    with pytest.raises(_comfy.Interrupted):
        _composite(original, torch.zeros(3, 6, 6, 3), mask)


def test_node_registration_and_tooltips():
    assert NODE_CLASS_MAPPINGS["VanishCompositeFrames"] is VanishCompositeFrames
    assert VanishCompositeFrames.CATEGORY == "Vanish/composite"
    inputs = VanishCompositeFrames.INPUT_TYPES()
    assert inputs["optional"]["crop"][0] == "VANISH_CROP"
    for group in inputs.values():
        for name, spec in group.items():
            assert spec[1].get("tooltip"), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_inputs_stay_exact():
    original = torch.rand(2, 30, 41, 3, device="cuda").half()
    mask = torch.zeros(2, 30, 41, device="cuda")
    mask[:, 5:20, 8:30] = 0.6
    out = _composite(original, torch.rand(2, 15, 20, 3, device="cuda").half(), mask, color_match=True, ring_width=4)
    _assert_untouched(out, original, mask.cpu())
