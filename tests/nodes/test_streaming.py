"""Remove Object (streaming): a path input, core's VIDEO input, cancel, and clear errors.

ComfyUI itself is not importable here, so core's VIDEO is a stand-in with the methods the node
uses from ``comfy_api``'s ``VideoFromFile``: ``get_stream_source()`` (a path, or a BytesIO for
uploads held in memory), ``get_active_trim_window()`` and ``save_to(path)``.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_testing import write_scene
from vanish.nodes import _comfy
from vanish.nodes._errors import VanishError
from vanish.nodes.inpainting import VanishProPainterModelLoader
from vanish.nodes.ops import video_decode as vd
from vanish.nodes.streaming import VanishRemoveObjectStreaming

FRAMES = 6
WIDGETS = dict(filename_prefix="vanish/streamed", format="h264-mp4", crf=19, grow=2, feather=1.0,
               temporal_sigma=0.0, crop="auto", size_mode="scale", scale=1.0, long_side=960, segment_length=0)


class StandInVideo:
    """The methods of comfy_api's VideoFromFile that the node calls."""

    def __init__(self, file: str | io.BytesIO, trim: tuple[float, float] = (0.0, 0.0)) -> None:
        self.file, self.trim, self.saved = file, trim, []

    def get_stream_source(self):
        if isinstance(self.file, io.BytesIO):
            self.file.seek(0)
        return self.file

    def get_active_trim_window(self) -> tuple[float, float]:
        return self.trim

    def save_to(self, path: str, **_) -> None:
        self.saved.append(path)
        with open(path, "xb") as handle:  # a real trim would re-encode; the bytes do here
            handle.write(self.file.getvalue() if isinstance(self.file, io.BytesIO) else Path(self.file).read_bytes())


@pytest.fixture
def clip(comfy) -> Path:
    clip, mask = write_scene(comfy.input / "scene", FRAMES)
    return clip


def _flow_fill():
    (model,) = VanishProPainterModelLoader().load("flow_fill (no weights)", "raft-things.pth",
                                                  "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "auto")
    return model


def _check_result(out: dict, comfy) -> Path:
    path, preview = out["result"]
    saved = Path(path)
    assert saved.is_file() and saved.resolve().is_relative_to(comfy.output.resolve())
    assert saved.name.startswith("streamed_") and vd.probe_video(saved).frame_count == FRAMES
    assert out["ui"]["images"][0]["filename"] == saved.name and out["ui"]["images"][0]["type"] == "output"
    assert preview.dtype == torch.float32 and preview.ndim == 4 and preview.shape[-1] == 3
    assert 1 <= preview.shape[0] <= FRAMES and max(preview.shape[1:3]) <= 256
    return saved


def test_path_input_writes_into_the_output_folder(comfy, clip):
    node = VanishRemoveObjectStreaming()
    out = node.remove("", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv", **WIDGETS)
    first = _check_result(out, comfy)
    again = _check_result(node.remove("", _flow_fill(), path=str(clip), mask_path="scene/mask.mkv", **WIDGETS), comfy)
    assert again != first and first.is_file()  # a new counter, the first file untouched


def test_workflow_is_stored_in_the_file(comfy, clip):
    import av

    out = VanishRemoveObjectStreaming().remove(
        "", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv",
        prompt={"7": {"class_type": "VanishRemoveObjectStreaming"}}, extra_pnginfo={"workflow": {"nodes": [7]}},
        **WIDGETS)
    with av.open(_check_result(out, comfy)) as container:  # as Save Video stores it
        assert "VanishRemoveObjectStreaming" in container.metadata["prompt"]
        assert container.metadata["workflow"] == '{"nodes": [7]}'


@pytest.mark.parametrize("kind", ["path", "bytes", "trimmed"])
def test_core_video_input(comfy, clip, kind):
    video = {"path": StandInVideo(str(clip)), "bytes": StandInVideo(io.BytesIO(clip.read_bytes())),
             "trimmed": StandInVideo(str(clip), trim=(0.0, 10.0))}[kind]
    mask = torch.zeros((1, 64, 96))
    mask[0, 20:40, 30:60] = 1.0  # one mask (MASK input) for every frame
    out = VanishRemoveObjectStreaming().remove("", _flow_fill(), core_video=video, mask=mask, **WIDGETS)
    _check_result(out, comfy)
    assert (kind == "trimmed") == bool(video.saved)  # a trim goes through core's save_to
    assert not list(comfy.temp.glob("vanish_video_*"))  # the temporary copy is gone


def test_cancel_stops_and_leaves_no_output(comfy, clip, monkeypatch):
    calls = []

    def interrupted() -> bool:  # the user presses Cancel once the run is under way
        calls.append(1)
        if len(calls) >= 3:
            _comfy.request_cancel(True)
        return len(calls) >= 3

    monkeypatch.setattr(_comfy, "is_interrupted", interrupted)
    with pytest.raises(_comfy.Interrupted):
        VanishRemoveObjectStreaming().remove("", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv",
                                             **WIDGETS)
    assert not [p for p in comfy.output.rglob("*") if p.is_file()]


def test_errors_name_the_node_and_the_input(comfy, clip):
    node = VanishRemoveObjectStreaming()
    with pytest.raises(VanishError, match=r"Remove Object \(streaming\): input 'prompts'") as error:
        node.remove("", _flow_fill(), path="scene/clip.mp4", **WIDGETS)
    assert error.value.fix
    with pytest.raises(VanishError, match=r"Remove Object \(streaming\): input 'video'"):
        node.remove("", _flow_fill(), path="scene/missing.mp4", mask_path="scene/mask.mkv", **WIDGETS)
    with pytest.raises(VanishError, match=r"Remove Object \(streaming\): input 'filename_prefix'"):
        node.remove("", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv",
                    **{**WIDGETS, "filename_prefix": "../outside"})
    assert not [p for p in comfy.output.rglob("*") if p.is_file()]


def test_a_name_taken_while_the_job_runs_goes_to_the_next_counter(comfy, clip, monkeypatch):
    from vanish.nodes import streaming

    targets, calls = [], []
    real_new_target = streaming._new_target

    def recording(*args):
        path, subfolder, next_name = real_new_target(*args)
        targets.append(path)
        return path, subfolder, next_name

    def squat() -> bool:  # another save takes the node's name once the run is under way
        calls.append(1)
        if len(calls) == 2:
            targets[0].write_bytes(b"someone else's file")
        return False

    monkeypatch.setattr(streaming, "_new_target", recording)
    monkeypatch.setattr(_comfy, "is_interrupted", squat)
    out = VanishRemoveObjectStreaming().remove("", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv",
                                               **WIDGETS)
    saved = _check_result(out, comfy)
    assert saved != targets[0] and saved.parent == targets[0].parent
    assert targets[0].read_bytes() == b"someone else's file"  # untouched
    assert not list(saved.parent.glob(".*.partial"))


def test_the_fast_flow_fill_choice_reaches_the_backend_as_one_fill(comfy, clip, monkeypatch):
    from vanish.nodes.ops import flow_fill

    measured, draws = flow_fill.flow_fill_inpaint, []

    def spy(frames, masks, settings, **kwargs):
        draws.append(settings.second_draw)
        return measured(frames, masks, settings, **kwargs)

    monkeypatch.setattr(flow_fill, "flow_fill_inpaint", spy)
    (fast,) = VanishProPainterModelLoader().load("flow_fill fast (no weights, one fill)", "raft-things.pth",
                                                 "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "auto")
    node = VanishRemoveObjectStreaming()
    _check_result(node.remove("", fast, path="scene/clip.mp4", mask_path="scene/mask.mkv", **WIDGETS), comfy)
    assert draws and not any(draws)
    draws.clear()
    _check_result(node.remove("", _flow_fill(), path="scene/clip.mp4", mask_path="scene/mask.mkv", **WIDGETS), comfy)
    assert draws and all(draws)
