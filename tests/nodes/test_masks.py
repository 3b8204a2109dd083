"""Mask Dilate & Blur: exact morphology on hand-made masks, smoothing, node errors, real masks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage

from vanish.nodes._errors import VanishError
from vanish.nodes.masks import NODE_CLASS_MAPPINGS, VanishMaskDilateBlur
from vanish.nodes.ops import mask_ops
from vanish.nodes.ops.mask_ops import MaskRefineSettings

NODE = "Mask Dilate & Blur"


def _dot(size: int = 9) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[0, size // 2, size // 2] = 1.0
    return mask


def _refine(mask, **kwargs):
    widgets = dict(grow=0, shape="disk", fill_holes=False, min_island_area=0, feather=0.0,
                   temporal_sigma=0.0, invert=False)
    widgets.update(kwargs)
    return VanishMaskDilateBlur().refine(mask, **widgets)


# --------------------------------------------------------------------------- morphology
EXPECTED_RADIUS_2 = {
    "disk": [[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]],
    "diamond": [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]],
    "square": [[1] * 5] * 5,
}


@pytest.mark.parametrize("shape", mask_ops.MASK_SHAPES)
def test_grow_single_pixel_radius_2_gives_the_shape(shape):
    grown = mask_ops.grow_or_shrink(_dot(), 2, shape)[0]
    expected = torch.zeros(9, 9)
    expected[2:7, 2:7] = torch.tensor(EXPECTED_RADIUS_2[shape], dtype=torch.float32)
    assert torch.equal(grown, expected)
    assert int(grown.sum()) == {"disk": 21, "diamond": 13, "square": 25}[shape]


@pytest.mark.parametrize("shape", mask_ops.MASK_SHAPES)
@pytest.mark.parametrize("radius", [1, 3, 6])
def test_grey_dilation_and_erosion_match_scipy(shape, radius):
    soft = torch.rand(2, 23, 31, generator=torch.Generator().manual_seed(radius))
    footprint = mask_ops.structuring_element(radius, shape).numpy()[None]
    grown = ndimage.grey_dilation(soft.numpy(), footprint=footprint, mode="constant", cval=0.0)
    shrunk = ndimage.grey_erosion(soft.numpy(), footprint=footprint, mode="constant", cval=1.0)
    assert np.array_equal(mask_ops.dilate(soft, radius, shape).numpy(), grown)
    assert torch.allclose(mask_ops.erode(soft, radius, shape), torch.from_numpy(shrunk), atol=1e-6)


def test_shrink_block_exact_and_edge_stays_attached():
    mask = torch.zeros(1, 12, 12)
    mask[0, 2:9, 2:9] = 1.0          # a 7x7 block
    mask[0, 0:4, 9:12] = 1.0         # a 4x3 block touching the top and right edges
    shrunk = mask_ops.grow_or_shrink(mask, -2, "disk")[0]
    expected = torch.zeros(12, 12)
    expected[4:7, 4:7] = 1.0         # disk r=2 keeps the middle 3x3 of the 7x7 block
    expected[0:2, 11] = 1.0          # outside the frame counts as selected: the edge block survives there
    assert torch.equal(shrunk, expected)
    assert torch.equal(_refine(mask, grow=-2)[0][0], expected)


def test_fill_holes_fills_enclosed_region_only():
    mask = torch.zeros(1, 10, 10)
    mask[0, 1:6, 1:6] = 1.0
    mask[0, 2:5, 2:5] = 0.0          # enclosed hole
    mask[0, 6:10, 6:10] = 1.0
    mask[0, 8:10, 8:10] = 0.0        # a notch open to the frame edge: not a hole
    filled = mask_ops.fill_holes(mask)[0]
    expected = mask[0].clone()
    expected[2:5, 2:5] = 1.0
    assert torch.equal(filled, expected)


def test_remove_islands_by_size_with_8_connectivity():
    mask = torch.zeros(1, 12, 12)
    mask[0, 0, 0] = mask[0, 1, 1] = mask[0, 2, 2] = 1.0      # 3 pixels, diagonal = one component
    mask[0, 6:8, 6:11] = 0.8                                   # 10 pixels, soft values kept
    cleaned = mask_ops.remove_islands(mask, 4)[0]
    expected = torch.zeros(12, 12)
    expected[6:8, 6:11] = 0.8
    assert torch.equal(cleaned, expected)
    assert torch.equal(mask_ops.remove_islands(mask, 3), mask)  # 3 is not smaller than 3
    assert torch.equal(_refine(mask, min_island_area=4)[0][0], expected)


def test_invert_keeps_subject():
    mask = torch.zeros(2, 8, 8)
    mask[:, 2:5, 3:6] = 1.0
    soft, hard, _ = _refine(mask, invert=True)
    assert torch.equal(soft, 1.0 - mask)
    assert torch.equal(hard, 1.0 - mask)


# --------------------------------------------------------------------------- blurs
def test_feather_is_symmetric_about_a_straight_edge_and_keeps_constants():
    mask = torch.zeros(1, 16, 20)
    mask[..., 10:] = 1.0
    soft = mask_ops.feather(mask, 2.0)[0]
    assert torch.allclose(soft[:, 9] + soft[:, 10], torch.ones(16), atol=1e-6)
    assert torch.allclose(soft[:, 10], soft[0, 10].expand(16))
    assert 0.5 < float(soft[0, 10]) < 1.0
    assert torch.equal(mask_ops.feather(torch.ones(1, 5, 7), 3.0), torch.ones(1, 5, 7))  # snapped to 1
    assert float(soft[0, 0]) == 0.0                                                    # beyond 3 sigma


def test_hard_mask_covers_every_pixel_the_soft_mask_touches():
    soft, hard, _ = _refine(_dot(21), grow=2, feather=1.5)
    assert torch.equal(hard, (soft > 1.0 / 255.0).float())
    assert float(soft.max()) < 1.0 and int(hard.sum()) > 21


def test_temporal_smoothing_reduces_flicker():
    mask = torch.zeros(8, 6, 6)
    mask[:, 1:5, 1:5] = 1.0
    mask[1::2, 1:5, 3:5] = 0.0        # the right half flickers every other frame
    smooth = mask_ops.smooth_temporally(mask, 1.5)
    change_before = (mask[1:] - mask[:-1]).abs().mean()
    change_after = (smooth[1:] - smooth[:-1]).abs().mean()
    assert change_after < 0.25 * change_before
    steady = mask[:, 1:5, 1:3]
    assert torch.allclose(smooth[:, 1:5, 1:3], steady, atol=1e-6)   # steady pixels unchanged
    assert torch.equal(mask_ops.smooth_temporally(mask[:1], 2.0), mask[:1])


def test_guided_refinement_snaps_soft_edge_to_image_edge():
    guide = torch.zeros(1, 24, 24, 3)
    guide[:, :, 12:] = 1.0
    mask = torch.zeros(1, 24, 24)
    mask[:, :, 12:] = 1.0
    blurred = mask_ops.feather(mask, 3.0)
    refined = mask_ops.refine_with_guide(blurred, guide, 4, 1e-4)
    # the soft edge becomes a step where the image has one: the jump across it grows from 0.13 to 0.5
    jump_before = float(blurred[0, 12, 12] - blurred[0, 12, 11])
    jump_after = float(refined[0, 12, 12] - refined[0, 12, 11])
    assert jump_before < 0.15 and jump_after > 0.45
    assert torch.allclose(refined[0, :, 11] + refined[0, :, 12], torch.ones(24), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_ops_preserve_dtype_and_device_and_accept_non_contiguous(dtype):
    mask = torch.zeros(3, 14, 10, dtype=dtype)
    mask[:, 4:9, 3:6] = 1
    mask = mask.transpose(1, 2).contiguous().transpose(1, 2)  # non-contiguous [3, 14, 10]
    assert not mask.is_contiguous()
    settings = MaskRefineSettings(fill_holes=True, min_island_area=2, grow=2, temporal_sigma=1.0, feather=1.0)
    soft, hard = mask_ops.refine_masks(mask, settings)
    assert soft.dtype == hard.dtype == dtype and soft.device == mask.device
    assert soft.shape == hard.shape == (3, 14, 10)
    assert mask_ops.dilate(mask, 1).dtype == dtype


# --------------------------------------------------------------------------- node
def test_node_registered_and_outputs_cpu_float32():
    assert NODE_CLASS_MAPPINGS["VanishMaskDilateBlur"] is VanishMaskDilateBlur
    assert VanishMaskDilateBlur.CATEGORY == "Vanish/mask"
    inputs = VanishMaskDilateBlur.INPUT_TYPES()
    for group in inputs.values():
        for name, spec in group.items():
            assert spec[1].get("tooltip"), name
    guide = torch.rand(4, 10, 12, 3, dtype=torch.float16)
    mask = torch.zeros(1, 10, 12)
    mask[0, 5, 5] = 1.0
    soft, hard, preview = _refine(mask, grow=1, feather=1.0, guide=guide)
    assert soft.shape == hard.shape == (4, 10, 12)      # a single mask follows the guide's frames
    assert preview.shape == (4, 10, 12, 3)
    assert soft.dtype == hard.dtype == preview.dtype == torch.float32 and soft.device.type == "cpu"


@pytest.mark.parametrize("mask, guide, needle", [
    (torch.zeros(3, 8, 8), torch.rand(2, 8, 8, 3), "input 'mask' has 3 frames but 'guide' has 2"),
    (torch.zeros(1, 8, 8), torch.rand(1, 8, 9, 3), "input 'mask' is 8x8 but 'guide' is 9x8"),
    (torch.zeros(1, 8, 8), torch.rand(1, 8, 8, 4), "input 'guide' has 4 channels (RGBA)"),
    (torch.zeros(1, 8, 8), torch.rand(1, 8, 8, 1), "input 'guide' has 1 channel (greyscale)"),
    (torch.full((1, 8, 8), float("nan")), None, "input 'mask' contains NaN"),
    (torch.full((1, 8, 8), 255.0), None, "input 'mask' has values from 255 to 255"),
])
def test_node_bad_input_names_node_input_and_fix(mask, guide, needle):
    with pytest.raises(VanishError) as info:
        _refine(mask, guide=guide)
    assert str(info.value).startswith(NODE + ": ")
    assert needle in str(info.value) and "Fix:" in str(info.value)


def test_node_rejects_unknown_shape():
    with pytest.raises(VanishError, match="input 'shape'"):
        _refine(_dot(), grow=1, shape="hexagon")


def test_real_bmx_masks_grow_feather_and_guide(clips_dir):
    folder = clips_dir / "bmx-trees"
    masks = torch.from_numpy(np.stack([cv2.imread(str(folder / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
                                       for i in range(3)])).float() / 255.0
    frames = torch.from_numpy(np.stack([cv2.imread(str(folder / "frames" / f"{i:05d}.jpg"))[..., ::-1]
                                        for i in range(3)]).copy()).float() / 255.0
    soft, hard, preview = _refine(masks, grow=4, feather=2.0, temporal_sigma=1.0, min_island_area=20,
                                  fill_holes=True, guide=frames)
    assert soft.shape == (3, 240, 432) and preview.shape == (3, 240, 432, 3)
    original = masks > 0.5
    assert bool(hard.bool()[original].all())                    # the hard mask covers the object
    assert int(hard.sum()) > 1.5 * int(original.sum())          # and the grown, feathered margin
    assert 0.0 <= float(soft.min()) and float(soft.max()) <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_refine_runs_on_cuda_and_matches_cpu():
    mask = torch.zeros(3, 20, 24)
    mask[:, 5:15, 6:18] = 1.0
    mask[:, 9:11, 10:12] = 0.0
    guide = torch.rand(3, 20, 24, 3)
    settings = MaskRefineSettings(fill_holes=True, min_island_area=3, grow=2, temporal_sigma=1.0, feather=1.0)
    soft_gpu, hard_gpu = mask_ops.refine_masks(mask.cuda().half(), settings, guide.cuda())
    soft_cpu, _ = mask_ops.refine_masks(mask, settings, guide)
    assert soft_gpu.device.type == "cuda" and soft_gpu.dtype == torch.float16
    assert torch.allclose(soft_gpu.float().cpu(), soft_cpu, atol=2e-3)
