"""Image propagation against the official ``img_propagation`` output, and on hand-made clips.

Reference: ../shared/propainter_parity/imgprop.safetensors, the official
``InpaintGenerator.img_propagation(frames * (1 - masks), (prop_flows_f, prop_flows_b), masks,
'nearest')`` on ``chain_inputs.safetensors`` (B=1, T=12, 128x160).

Tolerance (parity README): at most 1e-4 of the elements may differ by more than 1e-4 of the
output's scale — nearest warps and hard thresholds move whole pixels when a tie resolves the
other way. We follow the original's arithmetic order, so we expect and get exact equality;
the budget is asserted, equality is reported.
"""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from propainter_core.generator import GeneratorConfig, build_generator, propagate_images
from shared_paths import PARITY_DIR

ELEMENT_TOLERANCE = 1e-4
ELEMENT_BUDGET = 1e-4


@pytest.fixture(scope="module")
def official():
    inputs = load_file(PARITY_DIR / "chain_inputs.safetensors")
    return inputs, load_file(PARITY_DIR / "imgprop.safetensors")


def test_matches_official_img_propagation(official):
    inputs, expected = official
    frames, masks = inputs["frames"], inputs["masks"]
    generator = build_generator(GeneratorConfig())
    with torch.no_grad():
        prop_frames, updated_masks = generator.img_propagation(
            frames * (1 - masks), (inputs["prop_flows_f"], inputs["prop_flows_b"]), masks, interpolation="nearest")
    for name, ours in (("prop_frames", prop_frames), ("updated_masks", updated_masks)):
        ref = expected[name]
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        scale = ref.abs().max().item()
        off = ((ours - ref).abs() > ELEMENT_TOLERANCE * scale).float().mean().item()
        assert off <= ELEMENT_BUDGET, f"{name}: {off:.2e} of the elements differ"
        print(f"{name}: max |d| / scale = {(ours - ref).abs().max().item() / scale:.1e}, off elements {off:.1e}")
    # The case exercises real filling: the hole shrinks but does not vanish.
    assert 0 < updated_masks.sum() < masks.sum()


def _still_clip(length: int = 3, h: int = 6, w: int = 7):
    frames = torch.arange(length * 3 * h * w, dtype=torch.float32).view(1, length, 3, h, w) / 1000
    flows = torch.zeros(1, length - 1, 2, h, w)
    return frames, flows


def test_static_clip_fills_the_hole_from_the_next_frame():
    frames, flows = _still_clip()
    masks = torch.zeros(1, 3, 1, 6, 7)
    masks[:, 1, :, 2:4, 3:6] = 1
    result = propagate_images(frames * (1 - masks), flows, flows.clone(), masks)
    # the backward pass copies frame 2's pixels into frame 1's hole; nothing is left missing
    assert torch.equal(result.frames[:, 1], frames[:, 1 + 1] * masks[:, 1] + frames[:, 1] * (1 - masks[:, 1]))
    assert torch.equal(result.frames[:, 0], frames[:, 0]) and torch.equal(result.frames[:, 2], frames[:, 2])
    assert result.masks.sum() == 0


def test_hole_present_in_every_frame_stays_a_hole():
    frames, flows = _still_clip()
    masks = torch.zeros(1, 3, 1, 6, 7)
    masks[..., 1:3, 1:3] = 1
    result = propagate_images(frames * (1 - masks), flows, flows.clone(), masks)
    assert torch.equal(result.masks, masks)
    assert torch.equal(result.frames, frames * (1 - masks))


def test_inconsistent_flow_blocks_propagation():
    frames, flows = _still_clip()
    masks = torch.zeros(1, 3, 1, 6, 7)
    masks[:, 1, :, 2:4, 2:4] = 1
    flows_b = flows.clone()
    flows_b[:, :, 0] = 3.0  # backward flow does not undo the forward flow anywhere
    result = propagate_images(frames * (1 - masks), flows, flows_b, masks)
    assert torch.equal(result.masks, masks)


def test_shape_errors():
    frames, flows = _still_clip()
    with pytest.raises(ValueError, match=r"flows_backward must have shape \[B, T-1, 2, H, W\]"):
        propagate_images(frames, flows, flows[:, :1], torch.zeros(1, 3, 1, 6, 7))
    with pytest.raises(ValueError, match=r"masks \[B, T, 1, H, W\]"):
        propagate_images(frames, flows, flows, torch.zeros(1, 3, 2, 6, 7))
