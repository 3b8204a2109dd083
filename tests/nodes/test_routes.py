"""The /vanish/ routes of the prompt editor, called as plain functions, and once over a real aiohttp server."""
from __future__ import annotations

import asyncio
import json
import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from route_testing import routes_app
import torch

from sam2_testing import handle_for, moving_square_clip, tiny_predictor
from vanish.nodes import routes
from vanish.nodes.ops import editor_frames

W, H = 40, 24


def _grey(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


@pytest.fixture
def image_folder(comfy):
    """``input/seq``: 10 PNGs, image t is grey 20*t (exact through PNG)."""
    folder = comfy.input / "seq"
    folder.mkdir()
    for t in range(10):
        cv2.imwrite(str(folder / f"img_{t:03d}.png"), _grey(20 * t))
    return folder


@pytest.fixture
def video_file(comfy):
    """``input/clip.mkv``: 12 frames at 10 fps, FFV1 4:4:4, frame t is grey 20*t."""
    path = comfy.input / "clip.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        for t in range(12):
            frame = av.VideoFrame.from_ndarray(_grey(20 * t), format="rgb24")
            frame.pts = t
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _decode_png(result: routes.RouteResult) -> np.ndarray:
    assert result.status == 200, result.body
    assert result.content_type == "image/png"
    image = cv2.imdecode(np.frombuffer(result.body, np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- frames and selection
def test_image_folder_frame_honours_skip_and_every_nth(image_folder):
    params = {"file": "seq", "skip_first": "2", "every_nth": "3", "index": "1"}
    assert routes.video_info(params).body == {"width": W, "height": H, "frame_count": 3,
                                              "fps": pytest.approx(25 / 3), "kind": "image_sequence"}
    frame = _decode_png(routes.frame_png(params))
    assert frame.shape == (H, W, 3) and np.all(frame == 100)  # image 2 + 1*3 = 5


def test_video_frame_with_selection_and_forced_rate(video_file):
    frame = _decode_png(routes.frame_png({"file": "clip.mkv", "skip_first": 1, "every_nth": 2,
                                          "index": 2}))
    assert abs(int(frame.mean()) - 100) <= 2  # position 1 + 2*2 = 5
    # 10 fps re-timed to 5 fps: position 2 is at 0.4 s, source frame 4
    frame = _decode_png(routes.frame_png({"file": "clip.mkv", "force_rate": "5", "index": 2}))
    assert abs(int(frame.mean()) - 80) <= 2
    info = routes.video_info({"file": "clip.mkv", "cap": 4}).body
    assert (info["frame_count"], info["width"], info["height"]) == (4, W, H)


def test_resize_and_max_side(image_folder):
    result = routes.frame_png({"file": "seq", "width": 20, "index": 0})
    assert _decode_png(result).shape == (12, 20, 3)
    assert result.headers["X-Vanish-Frame-Size"] == "20x12"
    shrunk = routes.frame_png({"file": "seq", "index": 0, "max_side": 10})
    assert _decode_png(shrunk).shape == (6, 10, 3)
    assert shrunk.headers["X-Vanish-Frame-Size"] == f"{W}x{H}"  # the size prompts refer to


@pytest.mark.parametrize("params, text", [
    ({"file": "seq", "index": 3, "skip_first": 2, "every_nth": 3}, "has 3 frames (0 to 2)"),
    ({"file": "seq", "index": 5, "cap": 5}, "has 5 frames (0 to 4)"),
    ({"file": "clip.mkv", "index": 12}, "has 12 frames (0 to 11)"),
])
def test_index_past_the_selection_is_404(image_folder, video_file, params, text):
    result = routes.frame_png(params)
    assert result.status == 404 and text in result.body["error"]


@pytest.mark.parametrize("params, name", [
    ({"index": "abc"}, "'index'"), ({"index": "-1"}, "'index'"), ({"index": "1.5"}, "'index'"),
    ({"index": "0", "every_nth": "0"}, "'every_nth'"), ({"index": "0", "cap": "-2"}, "'cap'"),
    ({"index": "0", "force_rate": "nan"}, "'force_rate'"), ({}, "'index'"),
    ({"index": "0", "skip_first": "10"}, "leaves no frames"),
])
def test_bad_parameters_are_400_or_422(image_folder, params, name):
    result = routes.frame_png({"file": "seq", **params})
    assert result.status in (400, 422) and name in result.body["error"] and result.body["fix"]


# --------------------------------------------------------------------------- confinement
@pytest.mark.parametrize("name, status", [
    ("../secret.png", 400), ("seq/../../secret.png", 400), ("/etc/passwd", 400),
    ("C:\\Windows\\x.png", 400), ("..\\secret.png", 400), ("", 400), ("nope.mp4", 404),
    ("clip.mp4 [output]", 400), ("a\x00b", 400), (".", 403),
])
def test_file_names_stay_in_the_input_folder(comfy, name, status):
    (comfy.base / "secret.png").write_bytes(b"x")
    result = routes.frame_png({"file": name, "index": 0})
    assert result.status == status, result.body
    assert "input folder" in result.body["error"] or "invalid" in result.body["error"]


def test_symlink_leaving_the_input_folder_is_refused(comfy, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "real.png"
    cv2.imwrite(str(outside), _grey(7))
    os.symlink(outside, comfy.input / "link.png")
    result = routes.frame_png({"file": "link.png", "index": 0})
    assert result.status == 403 and "outside" in result.body["error"]
    inside = comfy.input / "inside.png"
    cv2.imwrite(str(inside), _grey(9))
    os.symlink(inside, comfy.input / "ok.png")  # links inside the folder are fine
    assert np.all(_decode_png(routes.frame_png({"file": "ok.png [input]", "index": 0})) == 9)


def test_routes_never_write(image_folder, comfy):
    before = sorted(p for p in comfy.base.rglob("*"))
    routes.frame_png({"file": "seq", "index": 2})
    routes.video_info({"file": "seq"})
    routes.preview({"frame": {"file": "seq", "index": 0}, "index": 0, "prompts": "{}"}, lambda: None)
    assert sorted(p for p in comfy.base.rglob("*")) == before


# --------------------------------------------------------------------------- run frames
def test_run_frames_are_written_shrunk_and_served(comfy):
    images = torch.rand(3, 1000, 500, 3)
    ui = editor_frames.write_run_frames(images, comfy.temp, "7")
    assert ui["vanish_frame_size"] == [500, 1000] and len(ui["vanish_frames"]) == 3
    ref = ui["vanish_frames"][2]
    result = routes.run_frame(ref)
    assert result.status == 200 and result.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(result.body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (768, 384, 3)
    editor_frames.write_run_frames(images[:1], comfy.temp, "7")  # replaces node 7's set
    assert routes.run_frame(ref).status == 404


def test_run_frames_keep_colours_and_are_not_rewritten_for_the_same_frames(comfy):
    images = torch.zeros(2, 20, 30, 3)
    images[0, ..., 0] = 0.5  # frame 0 mid red, frame 1 black
    ui = editor_frames.write_run_frames(images, comfy.temp, "3")
    first = comfy.temp / "vanish_editor" / ui["vanish_frames"][0]["filename"]
    rgb = cv2.cvtColor(cv2.imread(str(first)), cv2.COLOR_BGR2RGB)
    assert np.abs(rgb.astype(int) - [128, 0, 0]).max() <= 2  # small frames are not resized
    stamp = first.stat().st_mtime_ns
    assert editor_frames.write_run_frames(images, comfy.temp, "3") == ui  # new prompts, same frames
    assert first.stat().st_mtime_ns == stamp
    images[1] = 1.0  # other frames in the same tensor: rewritten
    editor_frames.write_run_frames(images, comfy.temp, "3")
    second = comfy.temp / "vanish_editor" / ui["vanish_frames"][1]["filename"]
    assert cv2.imread(str(second)).min() >= 253


def test_run_frames_are_found_again_by_node_id(comfy):
    assert routes.run_frames({"node": "12"}).status == 404
    ui = editor_frames.write_run_frames(torch.rand(2, 8, 10, 3), comfy.temp, "12")
    result = routes.run_frames({"node": "12"})
    assert result.status == 200 and result.body == ui
    assert routes.run_frames({"node": "13"}).status == 404
    assert routes.run_frames({"node": "../x"}).status == 400
    assert routes.run_frames({}).status == 400


@pytest.mark.parametrize("ref, status", [
    ({"filename": "../../input/x.png", "subfolder": "vanish_editor"}, 400),
    ({"filename": "x.jpg", "subfolder": "other"}, 403),
    ({"filename": "x.jpg", "subfolder": "vanish_editor/../.."}, 400),
    ({"filename": "missing.jpg", "subfolder": "vanish_editor"}, 404),
    ({"filename": "run_0123456789ab.json", "subfolder": "vanish_editor"}, 400),
])
def test_run_frame_is_confined(comfy, ref, status):
    assert routes.run_frame(ref).status == status


# --------------------------------------------------------------------------- preview
PROMPTS = {"version": 1, "image_size": [W * 2, H * 2], "objects": [
    {"id": 3, "frames": {"0": {"positive": [[40, 30]]}, "1": {"boxes": [[10, 10, 60, 40]]}}},
    {"id": 5, "frames": {"1": {"negative": [[20, 20]], "positive": [[50, 20]]}}}]}


def test_frame_prompts_are_picked_and_scaled():
    parts = routes.frame_prompts(json.dumps(PROMPTS), 1, W, H)
    assert list(parts) == [3, 5]
    assert parts[3].boxes == [(5.0, 5.0, 30.0, 20.0)]
    assert parts[5].positive == [(25.0, 10.0)] and parts[5].negative == [(10.0, 10.0)]
    assert list(routes.frame_prompts(PROMPTS, 0, W, H)) == [3]
    assert routes.frame_prompts(PROMPTS, 7, W, H) == {}


def test_overlay_colours_each_object():
    masks = np.zeros((2, 2, 3), bool)
    masks[0, 0, :2] = True
    masks[1, 0, 1:] = True
    out = routes.overlay_rgba(masks, [(1, 2, 3), (4, 5, 6)])
    assert out[0, 0].tolist() == [1, 2, 3, routes.OVERLAY_ALPHA]
    assert out[0, 1].tolist() == [4, 5, 6, routes.OVERLAY_ALPHA]  # later objects on top
    assert out[1].sum() == 0


def test_preview_without_a_model_says_how_to_get_one(image_folder):
    result = routes.preview({"frame": {"file": "seq", "index": 0}, "index": 0, "prompts": PROMPTS},
                            lambda: None)
    assert result.status == 409
    assert "No SAM 2 model is loaded" in result.body["error"] and "run the graph" in result.body["fix"]


def test_preview_with_a_random_weight_model(comfy):
    clip = (moving_square_clip(2, H * 2, W * 2) * 255).round().to(torch.uint8).numpy()
    cv2.imwrite(str(comfy.input / "still.png"), cv2.cvtColor(clip[1], cv2.COLOR_RGB2BGR))
    handle = handle_for(tiny_predictor())
    body = {"frame": {"file": "still.png", "index": 0}, "index": 1, "prompts": PROMPTS,
            "colors": {"5": [0, 0, 255]}}  # frame 1 of the prompts, shown on this still
    result = routes.preview(body, lambda: handle)
    overlay = _decode_png(result)
    assert overlay.shape == (H * 2, W * 2, 4)  # the still's size (image_size matches it)
    areas = json.loads(result.headers["X-Vanish-Mask-Areas"])
    assert set(areas) == {"3", "5"}
    assert set(np.unique(overlay[..., 3]).tolist()) <= {0, routes.OVERLAY_ALPHA}
    blue = np.all(overlay[..., :3] == (0, 0, 255), axis=-1)
    assert blue.sum() <= areas["5"]  # object 5 drawn in its colour (object 3 may not cover it)
    assert (overlay[..., 3] > 0).sum() <= areas["3"] + areas["5"]


def test_preview_from_a_run_frame(comfy):
    ui = editor_frames.write_run_frames(moving_square_clip(2, H, W), comfy.temp, "4")
    handle = handle_for(tiny_predictor())
    result = routes.preview({"frame": ui["vanish_frames"][0], "index": 0, "prompts": {
        "version": 1, "image_size": [W, H], "objects": [{"id": 1, "frames": {"0": {"positive": [[12, 20]]}}}]}},
        lambda: handle)
    assert _decode_png(result).shape == (H, W, 4)


@pytest.mark.parametrize("body, status, text", [
    ([], 400, "JSON object"),
    ({"frame": {"file": "seq", "index": 0}, "index": 0, "prompts": "{not json"}, 400, "not valid JSON"),
    ({"frame": {"file": "seq", "index": 0}, "index": 4, "prompts": PROMPTS}, 400, "no prompts on frame 4"),
    ({"frame": "seq", "index": 0, "prompts": PROMPTS}, 400, "'frame'"),
    ({"frame": {"file": "../x", "index": 0}, "index": 0, "prompts": PROMPTS}, 400, "input folder"),
])
def test_preview_bad_requests(image_folder, body, status, text):
    result = routes.preview(body, lambda: object())
    assert result.status == status and text in result.body["error"]


def test_preview_busy_model_is_503(image_folder, monkeypatch):
    from vanish.nodes.ops import sam2_session

    def busy(*_args, **_kwargs):
        raise TimeoutError("busy")

    monkeypatch.setattr(sam2_session, "preview_single_frame", busy)
    result = routes.preview({"frame": {"file": "seq", "index": 0}, "index": 0, "prompts": PROMPTS},
                            lambda: object())
    assert result.status == 503 and "busy" in result.body["error"]


def test_register_is_a_no_op_outside_comfyui():
    assert routes.register() is None


def test_routes_answer_over_http_when_registered(image_folder, video_file, monkeypatch):
    """register() wired into a real aiohttp server, as ComfyUI's PromptServer would hold it."""
    app = routes_app(monkeypatch)
    from aiohttp.test_utils import TestClient, TestServer

    async def exchange():
        async with TestClient(TestServer(app)) as client:
            info = await client.get(f"{routes.PREFIX}/video_info", params={"file": video_file.name})
            frame = await client.get(f"{routes.PREFIX}/frame", params={"file": "seq", "index": "3"})
            missing = await client.get(f"{routes.PREFIX}/frame", params={"file": "nowhere.mp4", "index": "0"})
            not_json = await client.post(f"{routes.PREFIX}/preview", data=b"{no")
            return ((info.status, await info.json()), (frame.status, frame.content_type, await frame.read()),
                    (missing.status, await missing.json()), (not_json.status, await not_json.json()))

    (info_status, info), (frame_status, frame_type, png), (missing_status, missing), (bad_status, bad) = \
        asyncio.run(exchange())
    assert info_status == 200 and info["frame_count"] == 12 and (info["width"], info["height"]) == (W, H)
    assert frame_status == 200 and frame_type == "image/png"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (H, W) and int(image[0, 0, 0]) == 60  # image 3 is grey 60
    assert missing_status == 404 and "error" in missing
    assert bad_status == 400 and "not JSON" in bad["error"]
