"""Load Video Frames and Save Video as ComfyUI runs them (fake ComfyUI folders)."""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vanish.nodes import _comfy, video_io
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import video_decode as vd
from vanish.nodes.ops import video_encode as ve

LOAD = video_io.VanishLoadVideoFrames()
SAVE = video_io.VanishSaveVideo()


def load(path: Path | str, skip: int = 0, cap: int = 0, nth: int = 1, rate: float = 0.0,
         width: int = 0, height: int = 0, **extra):
    return LOAD.load("", skip, cap, nth, rate, width, height, path=str(path), **extra)


def save(images=None, fmt: str = "h264-mp4", fps: float = 25.0, prefix: str = "vanish/test", **extra):
    return SAVE.save(prefix, fmt, 19, fps, images=images, **extra)


def chart_frames(count: int, patch: int = 16) -> torch.Tensor:
    """IMAGE ``[T, 4*patch, 6*patch, 3]``: a colour chart, brighter by 2 levels per frame."""
    colours = np.random.default_rng(3).integers(20, 230, (4, 6, 3)).astype(np.float32)
    chart = np.repeat(np.repeat(colours, patch, 0), patch, 1)
    frames = np.stack([chart + 2 * i for i in range(count)]) / 255.0
    return torch.from_numpy(frames.astype(np.float32))


def sine_audio(seconds: float, rate: int = 44100) -> dict:
    t = torch.arange(int(seconds * rate)) / rate
    wave = torch.stack([torch.sin(2 * math.pi * 440 * t), torch.sin(2 * math.pi * 660 * t)]) * 0.5
    return {"waveform": wave.unsqueeze(0), "sample_rate": rate}  # [1, 2, T]


def channel_shift(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).abs().max() * 255)


# --------------------------------------------------------------------------- interface
def test_registration_and_upload_widget(comfy):
    (comfy.input / "clip.mp4").write_bytes(b"")
    (comfy.input / "notes.txt").write_text("x")
    assert video_io.NODE_CLASS_MAPPINGS["VanishLoadVideoFrames"] is video_io.VanishLoadVideoFrames
    assert video_io.NODE_DISPLAY_NAME_MAPPINGS["VanishSaveVideo"] == "Save Video"
    files, options = video_io.VanishLoadVideoFrames.INPUT_TYPES()["required"]["video"]
    assert files == ["clip.mp4"] and options["video_upload"] is True
    for node in (video_io.VanishLoadVideoFrames, video_io.VanishSaveVideo):
        assert node.CATEGORY == "Vanish/video"
        spec = node.INPUT_TYPES()
        for group in ("required", "optional"):
            for name, (_, opts) in spec.get(group, {}).items():
                assert opts.get("tooltip"), f"{node.__name__}.{name} has no tooltip"
    assert video_io.VanishSaveVideo.OUTPUT_NODE is True


# --------------------------------------------------------------------------- round trips
def test_round_trip_keeps_count_fps_audio_and_colours(comfy):
    frames = chart_frames(12, patch=32)
    result = save(frames, fps=24.0, audio=sine_audio(2.0), prefix="rt/clip")
    saved = Path(result["result"][0])
    assert result["ui"] == {"images": [{"filename": saved.name, "subfolder": "rt", "type": "output"}],
                            "animated": (True,)}
    assert saved == comfy.output / "rt" / "clip_00001_.mp4"
    loaded, mask, audio, fps, count, info = load(saved)
    assert (count, fps, tuple(loaded.shape)) == (12, 24.0, (12, 128, 192, 3))
    assert audio["sample_rate"] == 44100 and audio["waveform"].shape == (1, 2, 22050)  # 12 / 24 s
    assert channel_shift(loaded, frames) <= 1.0
    assert mask.shape == (1, 128, 192) and float(mask.max()) == 0.0
    assert info.fps == 24.0 and info.frame_count == 12 and info.has_audio


def test_running_car_round_trip(comfy, clips_dir):
    src = clips_dir / "running_car" / "running_car.mp4"
    frames, _, audio, fps, count, info = load(src, cap=10)
    assert (count, fps, tuple(frames.shape)) == (10, 25.0, (10, 540, 972, 3))
    assert audio["waveform"].shape == (1, 2, 17640)  # 10 frames / 25 fps x 44.1 kHz
    saved = save(frames, audio=audio, video_info=info, fps=1.0)["result"][0]  # info's fps wins
    again, _, audio2, fps2, count2, _ = load(saved)
    assert (count2, fps2, tuple(again.shape)) == (10, 25.0, (10, 540, 972, 3))
    assert audio2["waveform"].shape == (1, 2, 17640)
    assert channel_shift(again, frames) <= 1.0
    assert float((again - frames).abs().mean()) * 255 < 3.0


def test_single_frame_clip(comfy):
    saved = save(chart_frames(1))["result"][0]
    frames, _, audio, fps, count, _ = load(saved)
    assert count == 1 and frames.shape == (1, 64, 96, 3) and fps == 25.0
    assert audio.get(video_io.SILENT_KEY) and audio["waveform"].shape == (1, 1, 1764)


@pytest.mark.parametrize("fmt", ["vp9-webm", "prores4444-mov", "ffv1-mkv", "png-sequence"])
def test_alpha_video_keeps_its_alpha(comfy, fmt):
    frames = chart_frames(3)
    alpha = torch.zeros(3, 64, 96)
    alpha[:, 16:48, 24:72] = 1.0
    alpha[1, :, :8] = 0.5
    saved = Path(save(frames, fmt=fmt, mask=alpha)["result"][0])
    loaded, mask, _, _, count, info = load(saved, rate=25.0)
    assert count == 3 and info.has_alpha and mask.shape == (3, 64, 96)
    # lossless formats only round 0.5 to 128/255; lossy ones move alpha by at most 1.5 levels
    tolerance = 0.5 if fmt in ("ffv1-mkv", "png-sequence") else 1.5
    assert float((mask - alpha).abs().max()) * 255 <= tolerance + 1e-3
    assert channel_shift(loaded, frames) <= 1.0


def test_mask_alone_saves_a_matte(comfy):
    matte = torch.zeros(2, 32, 48)
    matte[:, 8:24, 8:40] = 1.0
    saved = save(mask=matte, fmt="ffv1-mkv")["result"][0]
    frames, *_ = load(saved)
    assert torch.equal(frames[..., 0], matte) and torch.equal(frames[..., 2], matte)


def test_png_sequence_preview_lists_frames(comfy):
    result = save(chart_frames(2), fmt="png-sequence", prefix="seq", audio=sine_audio(1.0))
    folder = Path(result["result"][0])
    assert folder.name == "seq_00001_png" and (folder / "audio.flac").is_file()
    assert [e["filename"] for e in result["ui"]["images"]] == ["00000.png", "00001.png"]
    assert result["ui"]["images"][0]["subfolder"] == "seq_00001_png"


def test_odd_size_972x540_and_33x17(comfy):
    frames = torch.rand(2, 17, 33, 3)
    saved = save(frames, fmt="ffv1-mkv")["result"][0]
    loaded, *_ = load(saved)
    assert torch.allclose(loaded, (frames * 255).round() / 255, atol=1e-6)
    padded, *_ = load(save(frames)["result"][0])  # x264 needs even sizes: padded by one pixel
    assert padded.shape == (2, 18, 34, 3)


# --------------------------------------------------------------------------- selection + mask
def test_selection_trims_audio(comfy, clips_dir):
    src = clips_dir / "running_car" / "running_car.mp4"
    full, _, full_audio, *_ = load(src, cap=17, width=243)
    frames, _, audio, fps, count, _ = load(src, skip=4, nth=3, cap=5, width=243)
    assert (count, fps) == (5, 25.0 / 3)
    assert torch.equal(frames[1], full[7])
    assert audio["waveform"].shape == (1, 2, round(5 * 3 / 25 * 44100))
    start = round(4 / 25 * 44100)
    torch.testing.assert_close(audio["waveform"][..., :1000], full_audio["waveform"][..., start:start + 1000])
    forced, _, forced_audio, fps, count, _ = load(src, rate=50.0, cap=4, width=243)
    assert (count, fps) == (4, 50.0) and torch.equal(forced[0], forced[1])
    assert forced_audio["waveform"].shape[-1] == round(4 / 50 * 44100)


def test_static_logo_mask_resized_and_thresholded(comfy, clips_dir):
    src = clips_dir / "running_car" / "running_car.mp4"
    logo = clips_dir / "running_car" / "mask_logo.png"
    _, soft, *_ = load(src, cap=2, mask_path=str(logo))
    _, hard, *_ = load(src, cap=2, mask_path=str(logo), mask_threshold=0.5)
    assert soft.shape == hard.shape == (1, 540, 972)
    assert len(torch.unique(soft)) > 2 and set(torch.unique(hard).tolist()) == {0.0, 1.0}
    assert 0.001 < float(hard.mean()) < 0.5


def test_image_folder_with_masks_and_resize(comfy, clips_dir):
    frames, mask, _, fps, count, info = load(clips_dir / "bmx-trees" / "frames", cap=4, nth=2,
                                             width=216, mask_path=str(clips_dir / "bmx-trees" / "masks"),
                                             mask_threshold=0.5)
    assert (count, fps, info.kind) == (4, 12.5, "image_sequence")
    assert frames.shape == (4, 120, 216, 3) and mask.shape == (4, 120, 216)
    assert set(torch.unique(mask).tolist()) == {0.0, 1.0}


def test_upload_widget_value_resolves_in_input_folder(comfy, clips_dir):
    shutil.copy(clips_dir / "running_car" / "mask_square.png", comfy.input / "square.png")
    frames, _, _, _, count, _ = LOAD.load("square.png", 0, 0, 1, 0.0, 0, 0)
    assert count == 1 and frames.shape == (1, 240, 432, 3)
    assert comfyui_validation_reports(video_io.VanishLoadVideoFrames, {"video": "square.png"}) == []


# --------------------------------------------------------------------------- change tracking
def test_is_changed_tracks_the_file(comfy):
    target = comfy.input / "clip.mkv"
    ve.encode_video(target, np.zeros((2, 16, 16, 3), np.uint8), 25.0, "ffv1-mkv")
    before = video_io.VanishLoadVideoFrames.IS_CHANGED("clip.mkv")
    assert video_io.VanishLoadVideoFrames.IS_CHANGED("clip.mkv") == before
    os.utime(target, ns=(1, 1))
    assert video_io.VanishLoadVideoFrames.IS_CHANGED("clip.mkv") != before


# --------------------------------------------------------------------------- bad input
def test_missing_and_unreadable_files(comfy):
    with pytest.raises(VanishError, match=r"Load Video Frames: input 'video' points to .*gone.mp4"):
        LOAD.load("gone.mp4", 0, 0, 1, 0.0, 0, 0)
    with pytest.raises(VanishError, match=r"Load Video Frames: input 'path' .*does not exist"):
        load(comfy.input / "gone.mp4")
    (comfy.input / "broken.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(VanishError, match=r"input 'path' cannot be read(.|\n)*Fix:"):
        load(comfy.input / "broken.mp4")
    ve.encode_video(comfy.input / "ok.mkv", np.zeros((1, 8, 8, 3), np.uint8), 25.0, "ffv1-mkv")
    with pytest.raises(VanishError, match=r"input 'mask_path' points to .*nope.png"):
        load(comfy.input / "ok.mkv", mask_path="nope.png")


def comfyui_validation_reports(cls, inputs: dict) -> list[str]:
    """The errors ComfyUI's validate_inputs (execution.py) lists for ``cls.VALIDATE_INPUTS``.

    It passes the inputs named in the method's signature and, when the result is not True, adds
    one "Custom validation failed" error per input so named.
    """
    import inspect

    names = [a for a in inspect.getfullargspec(cls.VALIDATE_INPUTS).args if a != "cls"]
    result = cls.VALIDATE_INPUTS(**{n: inputs[n] for n in names if n in inputs})
    return [] if result is True else [f"{n} - {result}" for n in names if n in inputs]


def test_a_missing_mask_is_reported_once_on_mask_path(comfy, monkeypatch):
    ve.encode_video(comfy.input / "ok.mkv", np.zeros((2, 8, 8, 3), np.uint8), 25.0, "ffv1-mkv")
    inputs = {"video": "ok.mkv", "path": "", "mask_path": "nope.png"}
    assert comfyui_validation_reports(video_io.VanishLoadVideoFrames, inputs) == []
    decoded = []
    monkeypatch.setattr(video_io, "load_selected", lambda *a, **k: decoded.append(a) or (_ for _ in ()).throw(
        AssertionError("decoded the clip before checking the mask")))
    with pytest.raises(VanishError) as error:
        LOAD.load("ok.mkv", 0, 0, 1, 0.0, 0, 0, mask_path="nope.png")
    text = str(error.value)
    assert text.count("nope.png") == 1 and "input 'mask_path'" in text and "'video'" not in text
    assert decoded == []


def test_nothing_chosen(comfy):
    assert comfyui_validation_reports(video_io.VanishLoadVideoFrames, {"video": "", "path": ""}) == []
    with pytest.raises(VanishError, match=r"input 'video' names no file(.|\n)*Fix: choose or upload"):
        LOAD.load("", 0, 0, 1, 0.0, 0, 0)


def test_zero_frames_after_selection(comfy):
    ve.encode_video(comfy.input / "short.mkv", np.zeros((5, 8, 8, 3), np.uint8), 25.0, "ffv1-mkv")
    with pytest.raises(VanishError, match=r"input 'skip_first_frames' leaves no frames(.|\n)*below 5"):
        load(comfy.input / "short.mkv", skip=5)


def test_clip_too_large_for_ram_fails_before_decoding(comfy, clips_dir, monkeypatch):
    monkeypatch.setattr(_comfy, "available_ram", lambda: 100 * 972 * 540 * 12)
    monkeypatch.setattr(vd, "iter_selected_frames", lambda *a, **k: pytest.fail("decoding started"))
    with pytest.raises(VanishError) as error:
        load(clips_dir / "running_car" / "running_car.mp4")
    text = str(error.value)
    assert "input 'frame_load_cap'" in text and "292 frames of 972x540" in text
    assert "about 75 frames fit" in text and "set frame_load_cap to 75 or less" in text


@pytest.mark.parametrize("images, name, message", [
    (torch.rand(2, 16, 16, 4), "images", "4 channels"),
    (torch.rand(2, 16, 16, 1), "images", "1 channel"),
    (torch.full((2, 16, 16, 3), float("nan")), "images", "NaN"),
    (torch.full((2, 16, 16, 3), 2.0), "images", "0..1"),
])
def test_save_rejects_bad_images(comfy, images, name, message):
    with pytest.raises(VanishError, match=rf"Save Video: input '{name}' .*{message}"):
        save(images)
    assert list(comfy.output.rglob("*")) == []


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan"), 0.005, 1e9])
def test_save_rejects_bad_fps(comfy, fps):
    with pytest.raises(VanishError, match=r"Save Video: input 'fps' (.|\n)*writes 0.01 to 1000"):
        save(chart_frames(1), fps=fps)


@pytest.mark.parametrize("prefix", ["../escape", "a/../../escape", "/abs/path"])
def test_save_refuses_prefixes_leaving_output(comfy, prefix):
    with pytest.raises(VanishError, match=r"input 'filename_prefix'"):
        save(chart_frames(1), prefix=prefix)
    assert not (comfy.base / "escape_00001_.mp4").exists()


def test_save_rejects_mask_without_alpha_format_and_no_input(comfy):
    with pytest.raises(VanishError, match=r"input 'format' h264-mp4 cannot store the mask"):
        save(chart_frames(1), mask=torch.ones(1, 64, 96))
    with pytest.raises(VanishError, match=r"input 'images' is not connected"):
        save(None)
    with pytest.raises(VanishError, match=r"input 'audio'"):
        save(chart_frames(1), audio={"waveform": torch.full((1, 1, 100), float("nan")), "sample_rate": 8000})


def test_existing_files_keep_their_bytes(comfy):
    (comfy.output / "vanish").mkdir()
    taken = comfy.output / "vanish" / "test_00001_.mp4"
    taken.write_bytes(b"user's file")
    saved = Path(save(chart_frames(2))["result"][0])
    assert saved.name == "test_00002_.mp4" and taken.read_bytes() == b"user's file"
    for bad in (dict(fps=0.0), dict(prefix="../x"), dict(images=torch.rand(1, 8, 8, 4))):
        with pytest.raises(VanishError):
            save(**{"images": chart_frames(2), **bad})
    assert taken.read_bytes() == b"user's file"
    assert sorted(p.name for p in (comfy.output / "vanish").iterdir()) == ["test_00001_.mp4", "test_00002_.mp4"]


def test_missing_encoder_is_a_clear_error(comfy, monkeypatch):
    monkeypatch.setattr(ve, "encoder_available", lambda fmt: fmt != "h265-mp4")
    with pytest.raises(VanishError, match=r"input 'format' h265-mp4 needs the libx265 encoder(.|\n)*"
                                          r"Fix: choose one of h264-mp4"):
        save(chart_frames(1), fmt="h265-mp4")


def test_workflow_is_stored_in_the_file(comfy):
    import av

    saved = save(chart_frames(1), prompt={"3": {"class_type": "VanishSaveVideo"}},
                 extra_pnginfo={"workflow": {"nodes": []}})["result"][0]
    with av.open(saved) as container:
        assert "VanishSaveVideo" in container.metadata["prompt"]
        assert container.metadata["workflow"] == '{"nodes": []}'


def test_cancel_during_save_leaves_no_partial_file(comfy, monkeypatch):
    set_progress = _comfy.Progress.set

    def cancel_after_first_frame(bar, value):  # a cancel while encoding (the input checks also poll)
        set_progress(bar, value)
        _comfy.request_cancel(True)

    monkeypatch.setattr(_comfy.Progress, "set", cancel_after_first_frame)
    try:
        with pytest.raises(_comfy.Interrupted):
            save(chart_frames(3))
    finally:
        _comfy.request_cancel(False)
    assert list((comfy.output / "vanish").iterdir()) == []


@pytest.mark.parametrize("kwargs, name", [
    (dict(nth=0), "select_every_nth"), (dict(skip=-1), "skip_first_frames"),
    (dict(rate=float("nan")), "force_rate"), (dict(width=-2), "custom_width"),
])
def test_bad_selection_numbers(comfy, clips_dir, kwargs, name):
    with pytest.raises(VanishError, match=rf"input '{name}' is .*at least"):
        load(clips_dir / "running_car" / "mask_square.png", **kwargs)


def test_save_accepts_half_precision_and_non_contiguous_frames(comfy):
    frames = chart_frames(2)
    odd_layout = frames.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)  # same values, strided
    assert not odd_layout.is_contiguous()
    saved = save(odd_layout.half(), fmt="ffv1-mkv")["result"][0]
    loaded, *_ = load(saved)
    expected = (frames.half().float() * 255).round() / 255
    assert torch.allclose(loaded, expected, atol=1e-6)
