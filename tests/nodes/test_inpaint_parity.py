"""End-to-end parity through the nodes: official weights format, official settings, official clip.

The reference is the unchanged official ``inference_propainter.py`` on 16 bmx-trees frames at
224x128 (``../shared/propainter_parity/e2e_bmx16.safetensors``, run "default"). The tolerance
is the one that folder's README recommends for uint8 outputs: at most 1e-3 of the values differ
at all, at most 1e-4 by more than one level (measured thread-count jitter: 3.6e-6, all by one
level), and every pixel outside the dilated mask equals the input exactly.
"""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from shared_paths import PARITY_DIR
from vanish.nodes import inpainting

pytestmark = pytest.mark.slow


def test_node_matches_the_official_pipeline(comfy, parity_checkpoints):
    folder = comfy.models("propainter")
    for path in parity_checkpoints.values():
        (folder / path.name).write_bytes(path.read_bytes())
    case = load_file(str(PARITY_DIR / "e2e_bmx16.safetensors"))
    (model,) = inpainting.VanishProPainterModelLoader().load(
        "propainter", "raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "cpu")
    images = case["input_frames_rgb"].float() / 255.0
    masks = case["input_masks"].float() / 255.0
    filled, used, crop = inpainting.VanishProPainterInpaint().inpaint(
        images, masks, model, mask_dilation=4, flow_mask_dilation=-1, neighbor_length=10, ref_stride=10,
        subvideo_length=80, raft_iter=20, size_mode="scale", scale=1.0, long_side=960, crop="off",
        crop_margin=64, segment_length=0)
    ours = (filled * 255.0).round().to(torch.uint8)
    reference = case["output_default"]
    diff = (ours.int() - reference.int()).abs()
    assert crop == {"x": 0, "y": 0, "width": 224, "height": 128}
    assert (diff > 0).float().mean().item() <= 1e-3
    assert (diff > 1).float().mean().item() <= 1e-4
    outside = used == 0
    assert torch.equal(ours[outside], case["input_frames_rgb"][outside])
    # the used mask is the official dilated mask: everything the official run changed is inside it
    changed = (reference.int() - case["input_frames_rgb"].int()).abs().sum(-1) > 0
    assert not bool(changed[outside].any())
