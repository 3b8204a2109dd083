"""Issue 11: hostile requests to the /vanish/ routes and hostile prompt JSON get a clear 4xx (or a
PromptError), never a RecursionError, a plain-text 500 or a misread value."""
from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import numpy as np
import pytest
from route_testing import routes_app

from vanish.nodes import routes
from vanish.nodes.ops.sam2_prompts import MAX_JSON_DEPTH, PromptError, PromptSet, json_depth, parse_xy_points

DEEP = "[" * 100_000
PROMPTS = {"version": 1, "objects": [{"id": 1, "frames": {"0": {"positive": [[10, 10]]}}}]}


@pytest.fixture
def clip(comfy):
    path = comfy.input / "clip.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 40, 24, "yuv444p"
        for t in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((24, 40, 3), 40 * t, np.uint8), format="rgb24")
            frame.pts = t
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


# --------------------------------------------------------------------------- prompt JSON
@pytest.mark.parametrize("text", [DEEP, "[" * 65 + "]" * 65, '{"a":' * 1000])
def test_deeply_nested_prompt_json_is_a_prompt_error(text):
    """100,000 '[' gave a bare RecursionError in the node."""
    with pytest.raises(PromptError, match=r"^nests brackets \d+ deep; prompts nest at most 64 deep\."):
        PromptSet.from_json(text)
    with pytest.raises(PromptError, match=r"^points_positive nests brackets"):
        parse_xy_points(text, "points_positive")


def test_depth_ignores_brackets_inside_strings():
    assert json_depth('{"name": "[[[[[[", "objects": [[1]]}') == 3
    assert json_depth(r'["\"[[[["]') == 1
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_depth(nested) == MAX_JSON_DEPTH  # the limit itself parses (then fails on shape)
    with pytest.raises(PromptError, match="must be a JSON object"):
        PromptSet.from_json(nested)


@pytest.mark.parametrize("point", ["[true, false]", "[false, 3]", '{"x": true, "y": 2}'])
def test_booleans_are_not_coordinates(point):
    """[true, false] was accepted as the point (1, 0)."""
    text = '{"version": 1, "objects": [{"id": 1, "frames": {"0": {"positive": [%s]}}}]}' % point
    with pytest.raises(PromptError, match=r"object 1 frame 0 'positive' has (true|false), which is not "
                       r"a number\.\nFix: write coordinates as numbers"):
        PromptSet.from_json(text)
    with pytest.raises(PromptError, match=r"which is not a number"):
        parse_xy_points(f"[{point}]")


# --------------------------------------------------------------------------- routes
def test_preview_with_deeply_nested_prompts_field_is_400(clip):
    """The prompts field nested 100,000 deep gave a JSON 500."""
    body = {"frame": {"file": clip.name, "index": 0}, "index": 0, "prompts": DEEP}
    result = routes.preview(body, lambda: object())
    assert result.status == 400
    assert result.body["error"].startswith("the prompts nests brackets 100000 deep")


def test_preview_body_nested_too_deep_is_a_json_400():
    with pytest.raises(routes.RouteError) as caught:
        routes.parse_body(DEEP)
    assert caught.value.status == 400
    assert caught.value.error == "the request body nests brackets 100000 deep; prompts nest at most 64 deep."
    assert routes.parse_body('{"index": 0}') == {"index": 0}


def test_frame_route_with_a_5000_character_name_is_400(comfy):
    """A 5,000-character file name gave a 500 (OSError: File name too long)."""
    result = routes.frame_png({"file": "a" * 5000 + ".mp4", "index": "0"})
    assert result.status == 400
    assert result.body["error"].startswith("'file' 'aaaa")
    assert "(5004 characters)' cannot be a file name here: File name too long." in result.body["error"]
    assert routes.video_info({"file": "b/" * 3000 + "x.mp4"}).status in (400, 404)


def test_frame_route_names_the_size_limit(clip):
    """16384x16384 said "Invalid argument ... re-export the video"; the file is fine."""
    result = routes.frame_png({"file": clip.name, "index": "0", "width": "16384", "height": "16384"})
    assert result.status == 422
    assert "16384x16384 frames are larger than FFmpeg's scaler converts" in result.body["error"]
    assert "custom_width/custom_height" in result.body["fix"]


def test_deep_and_bad_bodies_over_http_are_json_400(comfy, monkeypatch):
    app = routes_app(monkeypatch)
    from aiohttp.test_utils import TestClient, TestServer

    async def exchange():
        async with TestClient(TestServer(app)) as client:
            answers = []
            for data in (DEEP.encode(), b"\xff\xfe{", b"{no"):
                response = await client.post(f"{routes.PREFIX}/preview", data=data)
                answers.append((response.status, response.content_type, await response.json()))
            long_name = await client.get(f"{routes.PREFIX}/frame", params={"file": "n" * 5000, "index": "0"})
            answers.append((long_name.status, long_name.content_type, await long_name.json()))
            return answers

    for status, content_type, body in asyncio.run(exchange()):
        assert status == 400 and content_type == "application/json" and body["error"]


def test_prompt_node_names_the_nesting_and_the_boolean(comfy):
    """In the node: a clear VanishError on the prompts input, not a bare RecursionError."""
    from vanish.nodes._errors import VanishError
    from vanish.nodes.segmentation import NODE_CLASS_MAPPINGS

    SAM2VideoPrompt = NODE_CLASS_MAPPINGS["VanishSAM2VideoPrompt"]  # by id: class names may change

    with pytest.raises(VanishError, match=r"^SAM 2 Video Prompt: input 'prompts' nests brackets 100000 "
                       r"deep; prompts nest at most 64 deep\.\nFix: "):
        SAM2VideoPrompt().build(DEEP)
    with pytest.raises(VanishError, match=r"input 'prompts' points_positive nests brackets 100000 deep"):
        SAM2VideoPrompt().build("", points_positive=DEEP)
    with pytest.raises(VanishError, match=r"'positive' has true, which is not a number"):
        SAM2VideoPrompt().build('{"version": 1, "objects": [{"id": 1, "frames": {"0": {"positive": '
                                '[[true, false]]}}}]}')
