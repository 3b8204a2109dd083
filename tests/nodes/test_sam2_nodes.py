"""The SAM 2 Propagate node: outputs, preview colours, prompt scaling and input errors.

The node runs on a fake predictor (``sam2_testing.FakePredictor``: object ``k`` is the pixel
column ``x == k``), so exact outputs can be asserted; the real model is covered in
test_sam2_session.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2_testing import FakePredictor, fake_handle
from vanish.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from vanish.nodes._errors import VanishError
from vanish.nodes.ops.sam2_prompts import PromptSet
from vanish.nodes.segmentation import PALETTE, VanishSAM2Propagate

TWO = {"objects": [{"id": 2, "frames": {"1": {"positive": [[4, 4]]}}},
                   {"id": 5, "frames": {"3": {"boxes": [[1, 1, 7, 5]]}}}]}


def _frames(t: int = 5) -> torch.Tensor:
    return torch.rand(t, 6, 8, 3, generator=torch.Generator().manual_seed(1))


def test_registered_ids_and_names():
    for node_id, name in [("VanishSAM2ModelLoader", "SAM 2 Model Loader"),
                          ("VanishSAM2VideoPrompt", "SAM 2 Video Prompt"),
                          ("VanishSAM2Propagate", "SAM 2 Propagate")]:
        assert NODE_DISPLAY_NAME_MAPPINGS[node_id] == name
        cls = NODE_CLASS_MAPPINGS[node_id]
        assert cls.CATEGORY == "Vanish/segmentation"
        inputs = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for spec in inputs.get(group, {}).values():
                assert spec[1].get("tooltip"), (node_id, spec)


def test_propagate_outputs_union_object_and_preview():
    frames = _frames()
    mask, object_mask, preview = VanishSAM2Propagate().propagate(
        fake_handle(FakePredictor()), frames, PromptSet.from_json(TWO), object_id=5)
    assert mask.shape == (5, 6, 8) and mask.dtype == torch.float32 and mask.device.type == "cpu"
    expected = torch.zeros(5, 6, 8)
    expected[:, :, 2] = 1
    expected[:, :, 5] = 1
    assert torch.equal(mask, expected)
    assert torch.equal(object_mask, (expected * 0).index_fill_(2, torch.tensor([5]), 1.0))
    assert preview.shape == frames.shape
    red = torch.tensor(PALETTE[0])
    torch.testing.assert_close(preview[:, :, 2], frames[:, :, 2] * 0.5 + red * 0.5)
    torch.testing.assert_close(preview[:, :, 0], frames[:, :, 0], atol=0, rtol=0)


def test_default_object_is_the_first_and_unknown_id_is_an_error():
    node = VanishSAM2Propagate()
    _, object_mask, _ = node.propagate(fake_handle(FakePredictor()), _frames(), PromptSet.from_json(TWO))
    assert bool(object_mask[:, :, 2].all()) and not bool(object_mask[:, :, 5].any())
    with pytest.raises(VanishError, match=r"input 'object_id' is 9 but the prompts have objects \[2, 5\]"):
        node.propagate(fake_handle(FakePredictor()), _frames(), PromptSet.from_json(TWO), object_id=9)


def test_prompts_are_scaled_from_their_image_size():
    fake = FakePredictor()
    ps = PromptSet.from_json({"image_size": [16, 12], "objects": [
        {"id": 1, "frames": {"0": {"positive": [[8, 6]], "boxes": [[2, 2, 16, 12]]}}}]})
    VanishSAM2Propagate().propagate(fake_handle(fake), _frames(2), ps, direction="forward")
    frame, obj, points, labels, box = fake.points_added[0]
    np.testing.assert_array_equal(points, [[4, 3]])
    np.testing.assert_array_equal(labels, [1])
    np.testing.assert_array_equal(box, [1, 1, 8, 6])


@pytest.mark.parametrize("prompts, kwargs, fragment", [
    ({"frame_count": 9, **TWO}, {}, "were made for 9 frames but the clip has 5"),
    (TWO, {"start_frame": 2}, "include frame(s) [1] outside the tracked frames 2 to 4"),
    (TWO, {"max_frames": 2}, "include frame(s) [3] outside the tracked frames 0 to 1"),
    (TWO, {"start_frame": 7}, "input 'start_frame' is 7 but the clip has 5 frames"),
    ({"objects": [{"id": 1, "frames": {"0": {"positive": [[9, 1]]}}}]}, {}, "outside the 8x6 frame"),
])
def test_propagate_input_errors(prompts, kwargs, fragment):
    with pytest.raises(VanishError) as info:
        VanishSAM2Propagate().propagate(fake_handle(FakePredictor()), _frames(), PromptSet.from_json(prompts), **kwargs)
    assert str(info.value).startswith("SAM 2 Propagate: input ")
    assert fragment in str(info.value)


def test_wrong_connections_are_named():
    node = VanishSAM2Propagate()
    with pytest.raises(VanishError, match="input 'model' must come from SAM 2 Model Loader"):
        node.propagate("model", _frames(), PromptSet.from_json(TWO))
    with pytest.raises(VanishError, match="input 'prompts' must come from SAM 2 Video Prompt"):
        node.propagate(fake_handle(FakePredictor()), _frames(), '{"objects": []}')
    with pytest.raises(VanishError, match="input 'frames'"):
        node.propagate(fake_handle(FakePredictor()), torch.zeros(2, 6, 8, 4), PromptSet.from_json(TWO))
