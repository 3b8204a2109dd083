"""Issue 11: bad inputs to Load Video Frames and Save Video end in clear errors (or warnings),
never in a crashed process, a raw PyAV/OS error, a silent wrong result or a huge allocation."""
from __future__ import annotations

import logging
import math
import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from fresh_process import save_videos_in_child
from vanish.nodes import video_io
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import video_decode as vd
from vanish.nodes.ops import video_encode as ve

# by node id: class names may change, ids never do
LOAD = video_io.NODE_CLASS_MAPPINGS["VanishLoadVideoFrames"]()
SAVE = video_io.NODE_CLASS_MAPPINGS["VanishSaveVideo"]()


def load(path, skip=0, cap=0, nth=1, rate=0.0, width=0, height=0, **extra):
    return LOAD.load("", skip, cap, nth, rate, width, height, path=str(path), **extra)


def save(images=None, fmt="h264-mp4", fps=25.0, prefix="vanish/test", **extra):
    return SAVE.save(prefix, fmt, 19, fps, images=images, **extra)


def frames(count=2, height=32, width=48) -> torch.Tensor:
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(1))


def write_clip(path: Path, count: int, width: int = 48, height: int = 32, fmt: str = "ffv1-mkv"
               ) -> Path:
    grey = np.stack([np.full((height, width, 3), (10 * t) % 256, np.uint8) for t in range(count)])
    return ve.encode_video(path, grey, 25.0, fmt)


def write_images(folder: Path, count: int, width: int, height: int) -> Path:
    folder.mkdir()
    for t in range(count):
        cv2.imwrite(str(folder / f"{t:03d}.png"), np.full((height, width, 3), 255, np.uint8))
    return folder


# --------------------------------------------------------------------------- crashes first
def test_h265_at_sizes_that_crash_libx265_is_refused_in_a_healthy_process(comfy):
    """34x18 aborted the process (glibc heap corruption inside libx265); 7x9 was a raw
    avcodec_open2 error. Run in a fresh process: on old code the child dies (exit -6). The
    smallest accepted size is saved last, in the same process, and must read back."""
    sizes = [(34, 18), (7, 9), (48, 32), ve.H265_MIN_SIZE]
    code, texts = save_videos_in_child(str(comfy.base), sizes, "h265-mp4")
    assert code == 0, f"the process saving {sizes} died (exit {code})"
    for (width, height), text in zip(sizes[:-1], texts):
        assert text.startswith("VanishError: Save Video: input 'format' h265-mp4 needs frames of "
                               "at least 64x64"), text
        assert f"these are {width}x{height}" in text and "Fix: choose h264-mp4" in text
    assert texts[-1].startswith("saved "), texts[-1]
    loaded, *_ = load(texts[-1][len("saved "):])
    assert loaded.shape == (3, ve.H265_MIN_SIZE[1], ve.H265_MIN_SIZE[0], 3)


def test_silent_audio_costs_nothing_at_absurd_rates(comfy):
    """Six images at force_rate 0.001 built a 1.06 GB zero waveform; now a stride-0 view."""
    folder = write_images(comfy.input / "six", 6, 64, 48)
    _, _, audio, fps, count, _ = load(folder, rate=0.001)
    waveform = audio["waveform"]
    assert audio[video_io.SILENT_KEY] and count == 6 and math.isclose(fps, 0.001)
    assert waveform.untyped_storage().nbytes() <= 16
    # 6000 s claimed: capped at an hour of silence
    assert waveform.shape == (1, 1, video_io.SILENT_MAX_SECONDS * video_io.SILENT_SAMPLE_RATE)
    assert float(waveform.abs().max()) == 0.0
    _, _, audio, *_ = load(folder / "000.png", rate=0.001)  # one frame: 1000 s, kept
    assert audio["waveform"].shape == (1, 1, 1000 * video_io.SILENT_SAMPLE_RATE)
    _, _, audio, *_ = load(folder / "000.png")  # a normal rate: 0.04 s at 25 fps
    assert audio["waveform"].shape == (1, 1, 1764)


def test_very_low_fps_from_video_info_is_a_clear_error(comfy):
    """force_rate 0.001 with every_nth 3 (legal widgets) gave Fraction(1, 0): ZeroDivisionError."""
    folder = write_images(comfy.input / "seq", 3, 32, 24)
    images, _, audio, fps, _, info = load(folder, rate=0.001, nth=3)
    assert fps < ve.MIN_FPS
    with pytest.raises(VanishError, match=r"^Save Video: input 'video_info' gives 0.000333\d* frames "
                       r"per second; Save Video writes 0.01 to 1000\.\nFix: raise force_rate"):
        save(images, audio=audio, video_info=info)


@pytest.mark.parametrize("fmt", [f for f in ve.FORMATS if f != "png-sequence"])
@pytest.mark.parametrize("fps", [ve.MIN_FPS, ve.MAX_FPS])
def test_fps_at_both_bounds_writes_frames_that_decode(comfy, fmt, fps):
    if not ve.encoder_available(fmt):
        pytest.skip(f"no {fmt} encoder in this PyAV build")
    saved = save(frames(3, 64, 64), fmt=fmt, fps=fps)["result"][0]
    loaded, _, _, loaded_fps, count, _ = load(saved)
    assert count == 3 and math.isclose(loaded_fps, fps, rel_tol=1e-3)


def test_a_stream_that_does_not_read_back_is_not_reported_as_saved(comfy, monkeypatch):
    """fps 1e9 sometimes wrote frames that do not decode, and Save Video reported success."""
    real = ve._encode_container

    def drops_frames(handle, spec, pix_fmt, size, rate, frames_, *args):
        return real(handle, spec, pix_fmt, size, rate, [frames_[0]], *args)  # what a broken encoder does

    monkeypatch.setattr(ve, "_encode_container", drops_frames)
    with pytest.raises(VanishError, match=r"^Save Video: input 'format' h264-mp4 could not write 3 "
                       r"frames of 48x32 at 25 fps: the written file reads back 1 of 3 frames\."):
        save(frames(3))
    assert list((comfy.output / "vanish").iterdir()) == []  # the bad file is gone


# --------------------------------------------------------------------------- Save Video inputs
@pytest.mark.parametrize("prefix, text", [
    ("x" * 300, r"has a part of 300 bytes \('x{40}'\.\.\.\); file names may have at most 255 bytes"),
    ("sub/" + "y" * 260 + "/clip", r"has a part of 260 bytes"),
    ("clip\x00name", r"contains a NUL character"),
])
def test_prefix_too_long_or_with_nul_is_a_clear_error(comfy, prefix, text):
    with pytest.raises(VanishError, match=r"^Save Video: input 'filename_prefix' " + text):
        save(frames(), prefix=prefix)


def test_prefix_of_the_longest_allowed_name_saves(comfy):
    room = video_io.MAX_NAME_BYTES - video_io.COUNTER_SUFFIX
    saved = Path(save(frames(), prefix="z" * room)["result"][0])
    assert saved.is_file() and len(saved.name) <= video_io.MAX_NAME_BYTES


def test_output_folder_that_is_a_file_is_a_clear_error(comfy):
    (comfy.output / "blocker").write_text("a file where a folder should be")
    with pytest.raises(VanishError, match=r"^Save Video: input 'filename_prefix' leads to .*blocker, "
                       r"which cannot be written: a part of this path is a file, not a folder\."):
        save(frames(), prefix="blocker/clip")
    shutil.rmtree(comfy.output)
    comfy.output.write_text("the whole output folder is a file")
    with pytest.raises(VanishError, match=r"which cannot be written: a part of this path is a file"):
        save(frames(), prefix="clip")


def test_unwritable_output_folder_is_a_clear_error(comfy, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ve, "encode_video", refuse)  # tests run as root: chmod would not stop them
    with pytest.raises(VanishError, match=r"^Save Video: input 'filename_prefix' leads to .*, which "
                       r"cannot be written: Permission denied\.\nFix: choose another prefix"):
        save(frames())


def _sine(rate: int, seconds: float = 0.5) -> dict:
    t = torch.arange(int(rate * seconds)) / rate
    return {"waveform": torch.sin(2 * math.pi * 3 * t)[None, None] * 0.5, "sample_rate": rate}


def test_aac_at_192_khz_is_resampled_to_a_rate_it_takes(comfy):
    saved = save(frames(12), audio=_sine(192_000))["result"][0]
    with av.open(saved) as container:
        assert container.streams.audio[0].rate == 96_000
    _, _, audio, *_ = load(saved)
    assert audio["sample_rate"] == 96_000 and audio["waveform"].abs().max() > 0.1


@pytest.mark.parametrize("rate", [7, 900_000])
def test_audio_rates_no_encoder_takes_are_a_clear_error(comfy, rate):
    with pytest.raises(VanishError, match=rf"^Save Video: input 'audio' has a sample rate of {rate} "
                       r"Hz; Save Video writes sound at 1000 to 768000 Hz"):
        save(frames(), audio=_sine(rate, 2.0))


def test_audio_rate_choice_per_encoder():
    assert ve.add_audio_stream.__module__.endswith("video_audio")
    from vanish.nodes.ops.video_audio import audio_rate_for

    assert audio_rate_for("aac", 192_000) == 96_000 and audio_rate_for("aac", 44_100) == 44_100
    assert audio_rate_for("aac", 5_000) == 7_350 and audio_rate_for("libopus", 44_100) == 48_000
    assert audio_rate_for("flac", 192_000) == 192_000  # FLAC takes any rate


# --------------------------------------------------------------------------- Load Video Frames
def test_frames_too_large_for_the_scaler_name_the_size(comfy):
    """16384x16384 failed with "Invalid argument returned 22 ... re-export the clip"."""
    clip = write_clip(comfy.input / "clip.mkv", 2)
    with pytest.raises(VanishError, match=r"^Load Video Frames: input 'custom_width' asks for "
                       r"frames FFmpeg's scaler cannot convert: 16384x16384 frames are larger than "
                       r"FFmpeg's scaler converts"):
        load(clip, width=16384, height=16384)
    assert load(clip, width=16384, height=64)[0].shape == (2, 64, 16384, 3)  # long but thin is fine


def test_mask_with_another_frame_count_is_an_error(comfy):
    clip = write_clip(comfy.input / "clip.mkv", 6)
    for count in (3, 9):
        masks = write_images(comfy.input / f"masks{count}", count, 48, 32)
        with pytest.raises(VanishError, match=rf"^Load Video Frames: input 'mask_path' gives {count} "
                           r"mask frames for the 6 frames loaded"):
            load(clip, mask_path=str(masks))
    mask_video = write_clip(comfy.input / "mask.mkv", 40)
    with pytest.raises(VanishError, match=r"gives 40 mask frames for the 6 frames"):
        load(clip, mask_path=str(mask_video))
    # the same selection on both keeps them in step; one image serves every frame
    assert load(clip, cap=4, mask_path=str(mask_video))[1].shape == (4, 32, 48)
    cv2.imwrite(str(comfy.input / "one.png"), np.full((32, 48), 255, np.uint8))
    assert load(clip, mask_path=str(comfy.input / "one.png"))[1].shape == (1, 32, 48)


def test_mask_of_another_aspect_is_refused_not_stretched(comfy):
    clip = write_clip(comfy.input / "clip.mkv", 2, 48, 32)
    cv2.imwrite(str(comfy.input / "square.png"), np.full((32, 32), 255, np.uint8))
    with pytest.raises(VanishError, match=r"^Load Video Frames: input 'mask_path' is 32x32 but the "
                       r"clip is 48x32: another aspect ratio"):
        load(clip, mask_path=str(comfy.input / "square.png"))
    # the same aspect at another size is fine (and follows custom sizes like the frames do)
    cv2.imwrite(str(comfy.input / "half.png"), np.full((16, 24), 255, np.uint8))
    _, mask, *_ = load(clip, width=64, height=64, mask_path=str(comfy.input / "half.png"))
    assert mask.shape == (1, 64, 64)


def _truncated_mp4(path: Path, count: int = 60) -> Path:
    full = path.with_suffix(".full.mp4")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header announces all frames; half the data
    return path


def test_damaged_file_that_decodes_partway_warns_with_counts(comfy, caplog):
    clip = _truncated_mp4(comfy.input / "cut.mp4")
    with caplog.at_level(logging.WARNING):
        _, _, _, _, count, info = load(clip)
    assert 0 < count < 60
    expected = f"cut.mp4 decoded {count} of the 60 frames its container announces"
    assert expected in info.decode_warning and "damaged or cut short" in info.decode_warning
    assert any(expected in record.getMessage() for record in caplog.records)
    # a whole file carries no warning
    _, _, _, _, _, whole = load(write_clip(comfy.input / "whole.mkv", 5))
    assert whole.decode_warning == ""


@pytest.mark.parametrize("name", ["a" * 5000, "a/" * 3000 + "b"])
def test_path_too_long_for_the_os_is_a_clear_error(comfy, name):
    """The same fault as the route's 5,000-character name, in the node: a raw OSError (errno 36)."""
    assert type(LOAD).IS_CHANGED("", path=name).startswith("unusable:")
    with pytest.raises(VanishError, match=r"^Load Video Frames: input 'path' is not a usable path "
                       r"\(File name too long\): .*characters\)\.\nFix: give a shorter path"):
        load(name)
    clip = write_clip(comfy.input / "clip.mkv", 2)
    with pytest.raises(VanishError, match=r"^Load Video Frames: input 'mask_path' is not a usable path"):
        load(clip, mask_path=name)


@pytest.mark.parametrize("fmt", ["h264-mp4", "vp9-webm", "prores4444-mov", "ffv1-mkv", "png-sequence"])
def test_every_audio_rate_in_range_saves_with_every_format(comfy, fmt):
    """The same fault as AAC at 192 kHz, checked for every encoder at both ends of the range."""
    for rate in (ve.MIN_AUDIO_RATE, 192_000, ve.MAX_AUDIO_RATE):
        saved = Path(save(frames(12, 64, 64), fmt=fmt, audio=_sine(rate))["result"][0])
        sound = saved / "audio.flac" if fmt == "png-sequence" else saved
        with av.open(str(sound)) as container:
            assert container.streams.audio, (fmt, rate)
