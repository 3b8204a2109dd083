"""The SAM 2 prompt data model: parsing, validation errors, serialisation, KJNodes points."""
from __future__ import annotations

import json

import pytest

from vanish.nodes._errors import VanishError
from vanish.nodes.ops.sam2_prompts import (FramePrompts, ObjectPrompts, PromptError, PromptSet,
                                           parse_xy_points)
from vanish.nodes.segmentation import EXAMPLE_PROMPTS, VanishSAM2VideoPrompt, merge_xy_points

FULL = {"version": 1, "image_size": [64, 48], "frame_count": 5, "objects": [
    {"id": 1, "name": "rider", "frames": {
        "0": {"positive": [[10, 20.5]], "negative": [[30, 40]], "boxes": [[1, 2, 30, 40]]},
        "3": {"positive": [[12, 22]]}}},
    {"id": 7, "frames": {"2": {"boxes": [[0, 0, 64, 48], [5, 5, 9, 9]]}}}]}


def test_parse_full_example_into_dataclasses():
    ps = PromptSet.from_json(json.dumps(FULL))
    assert ps.image_size == (64, 48) and ps.frame_count == 5
    assert [o.id for o in ps.objects] == [1, 7]
    rider = ps.objects[0]
    assert rider.name == "rider" and sorted(rider.frames) == [0, 3]
    assert rider.frames[0] == FramePrompts([(10.0, 20.5)], [(30.0, 40.0)], [(1.0, 2.0, 30.0, 40.0)])
    assert ps.objects[1].frames[2].boxes[1] == (5.0, 5.0, 9.0, 9.0)
    assert ps.prompted_frames() == [0, 2, 3]
    ps.validate(5, (64, 48))


def test_round_trip_is_stable():
    ps = PromptSet.from_json(FULL)
    again = PromptSet.from_json(ps.to_json())
    assert again == ps
    assert json.loads(ps.to_json())["objects"][1] == {
        "id": 7, "frames": {"2": {"boxes": [[0.0, 0.0, 64.0, 48.0], [5.0, 5.0, 9.0, 9.0]]}}}


def test_example_widget_value_parses():
    ps = PromptSet.from_json(EXAMPLE_PROMPTS)
    assert ps.objects[0].frames[0].positive == [(100.0, 100.0)]


@pytest.mark.parametrize("text, fragment", [
    ("", "is empty"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"version": 2, "objects": []}', "version 2"),
    ('{"version": 1}', "no 'objects' list"),
    ('{"objects": [{"id": 1, "frames": {}}]}', "object 1 has no prompts"),
    ('{"objects": [{"id": 1, "frames": {"0": {}}}]}', "object 1 frame 0 has no points or boxes"),
    ('{"objects": [{"id": 1, "frames": {"a": {"positive": [[1, 1]]}}}]}', "not a frame number"),
    ('{"objects": [{"id": 1, "frames": {"0": {"positive": [[1]]}}}]}', "a point is [x, y]"),
    ('{"objects": [{"id": 1, "frames": {"0": {"positive": [["a", 1]]}}}]}', "not a number"),
    ('{"objects": [{"id": 1, "frames": {"0": {"boxes": [[1, 2, 3]]}}}]}', "a box is [x0, y0, x1, y1]"),
    ('{"objects": [{"id": 1, "frames": {"0": {"clicks": [[1, 2]]}}}]}', "unknown keys ['clicks']"),
    ('{"objects": [{"id": -2, "frames": {"0": {"positive": [[1, 2]]}}}]}', "ids are whole numbers"),
    ('{"objects": [{"id": 3, "frames": {"0": {"positive": [[1, 2]]}}},'
     ' {"id": 3, "frames": {"1": {"positive": [[1, 2]]}}}]}', "two objects with id 3"),
    ('{"image_size": [0, 5], "objects": []}', "image_size"),
])
def test_malformed_prompts_say_what_to_fix(text, fragment):
    with pytest.raises(PromptError) as info:
        PromptSet.from_json(text)
    assert fragment in str(info.value)
    assert "Fix:" in str(info.value)


def _one(frames: dict, **top) -> PromptSet:
    return PromptSet.from_json({"objects": [{"id": 1, "frames": frames}], **top})


@pytest.mark.parametrize("ps, count, size, fragment", [
    (_one({"9": {"positive": [[1, 1]]}}), 5, (64, 48), "frame 9, but the frames are numbered 0 to 4"),
    (_one({"0": {"positive": [[65, 1]]}}), 5, (64, 48), "positive point at (65, 1), outside the 64x48"),
    (_one({"0": {"positive": [[1, 1]], "negative": [[1, -0.5]]}}), 5, (64, 48), "negative point at (1, -0.5)"),
    (_one({"0": {"boxes": [[10, 10, 10, 20]]}}), 5, (64, 48), "with no area"),
    (_one({"0": {"boxes": [[10, 10, 70, 20]]}}), 5, (64, 48), "reaching outside the 64x48 frame"),
    (_one({"0": {"negative": [[1, 1]]}}), 5, (64, 48), "object 1 has no positive point or box"),
    (_one({"0": {"positive": [[1, 1]]}}, frame_count=8), 5, (64, 48), "made for 8 frames but the clip has 5"),
    (PromptSet(), 5, (64, 48), "has no objects"),
])
def test_validation_errors(ps, count, size, fragment):
    with pytest.raises(PromptError) as info:
        ps.validate(count, size)
    assert fragment in info.value.problem


def test_points_on_the_edge_and_negative_only_correction_frames_are_valid():
    ps = _one({"0": {"positive": [[64, 48], [0, 0]]}, "4": {"negative": [[3, 3]]}})
    ps.validate(5, (64, 48))


def test_coordinates_are_checked_and_scaled_in_image_size():
    ps = _one({"0": {"positive": [[120, 90]], "boxes": [[0, 0, 128, 96]]}}, image_size=[128, 96])
    ps.validate(5, (64, 48))  # inside the 128x96 frame the clicks were made on
    scaled = ps.scaled_to(64, 48)
    assert scaled.objects[0].frames[0].positive == [(60.0, 45.0)]
    assert scaled.objects[0].frames[0].boxes == [(0.0, 0.0, 64.0, 48.0)]
    assert scaled.image_size == (64, 48)
    assert ps.scaled_to(128, 96) is ps


def test_kjnodes_points_format():
    assert parse_xy_points('[{"x": 10, "y": 20}, {"x": "3", "y": 4.5}]') == [(10.0, 20.0), (3.0, 4.5)]
    assert parse_xy_points("[[1, 2]]") == [(1.0, 2.0)]
    assert parse_xy_points("") == [] and parse_xy_points(None) == []
    with pytest.raises(PromptError, match="not valid JSON"):
        parse_xy_points("[{x: 1}]")


def test_merge_kjnodes_points_into_object_and_frame():
    ps = PromptSet([ObjectPrompts(2, {0: FramePrompts([(1.0, 1.0)])})])
    merged = merge_xy_points(ps, '[{"x": 5, "y": 6}]', '[{"x": 7, "y": 8}]', 4, 2)
    assert merged.objects[0].frames[4] == FramePrompts([(5.0, 6.0)], [(7.0, 8.0)])
    merged = merge_xy_points(merged, '[{"x": 9, "y": 9}]', None, 0, 3)
    assert [o.id for o in merged.objects] == [2, 3]


def test_prompt_node_accepts_points_editor_output_and_checks_frames():
    import torch

    node = VanishSAM2VideoPrompt()
    frames = torch.zeros(3, 48, 64, 3)
    (ps,) = node.build(EXAMPLE_PROMPTS, frames=frames, points_positive='[{"x": 10, "y": 12}]',
                       frame_index=2, object_id=1)
    assert [o.id for o in ps.objects] == [1] and ps.objects[0].frames[2].positive == [(10.0, 12.0)]
    with pytest.raises(VanishError) as info:
        node.build(EXAMPLE_PROMPTS, frames=frames)  # the example click (100, 100) is off a 64x48 frame
    assert str(info.value).startswith("SAM 2 Video Prompt: input 'prompts' ")
    assert "outside the 64x48 frame" in str(info.value)
    with pytest.raises(VanishError, match="frame 5, but the frames are numbered 0 to 2"):
        node.build('{"objects": [{"id": 1, "frames": {"5": {"positive": [[1, 1]]}}}]}', frames=frames)
