"""The ComfyUI-free video helpers: probing, frame selection, single-frame seek, colour, audio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vanish.nodes.ops import video_decode as vd
from vanish.nodes.ops import video_encode as ve
from vanish.nodes.ops.video_audio import AudioClip, read_audio

FPS = 10.0
SAMPLE_RATE = 8000


def numbered_frames(count: int, height: int = 24, width: int = 40) -> np.ndarray:
    """uint8 ``[T, H, W, 3]``; frame i is flat grey ``10 + 12 * i`` (identifiable after decode)."""
    levels = (10 + 12 * np.arange(count)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def frame_ids(frames: list[np.ndarray]) -> list[int]:
    return [int(round((float(f[..., :3].mean()) - 10) / 12)) for f in frames]


def ramp_audio(seconds: float) -> AudioClip:
    """Mono audio whose sample value is 0.1 x its time in seconds (lossless in FLAC)."""
    t = np.arange(int(seconds * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
    return AudioClip((0.1 * t)[None], SAMPLE_RATE)


@pytest.fixture
def numbered_clip(tmp_path) -> Path:
    """20 lossless frames at 10 fps with a 2 s ramp sound track (FFV1 + FLAC in Matroska)."""
    return ve.encode_video(tmp_path / "numbered.mkv", numbered_frames(20), FPS, "ffv1-mkv",
                           audio=ramp_audio(2.0))


def colour_chart(patch: int = 32) -> np.ndarray:
    """6x4 random-colour patches, uint8 ``[4*patch, 6*patch, 3]``."""
    colours = np.random.default_rng(7).integers(0, 256, (4, 6, 3)).astype(np.uint8)
    return np.repeat(np.repeat(colours, patch, 0), patch, 1)


def test_probe_running_car(clips_dir):
    info = vd.probe_video(clips_dir / "running_car" / "running_car.mp4")
    assert (info.kind, info.width, info.height, info.frame_count) == ("video", 972, 540, 292)
    assert info.fps == 25.0 and info.has_audio and not info.has_alpha
    assert (info.audio_sample_rate, info.audio_channels) == (44100, 2)
    assert info.duration == pytest.approx(11.68, abs=0.05)


def test_probe_image_sequence_and_image(clips_dir):
    folder = vd.probe_video(clips_dir / "bmx-trees" / "frames")
    assert (folder.kind, folder.frame_count, folder.width, folder.height) == ("image_sequence", 80, 432, 240)
    single = vd.probe_video(clips_dir / "running_car" / "mask_logo.png")
    assert (single.kind, single.frame_count, single.width, single.height) == ("image", 1, 1296, 720)


def test_natural_order(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png"):
        (tmp_path / name).touch()
    assert [p.name for p in vd.list_image_files(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png"]


@pytest.mark.parametrize("selection, expected", [
    (vd.FrameSelection(), list(range(20))),
    (vd.FrameSelection(skip_first=3, every_nth=2, cap=4), [3, 5, 7, 9]),
    (vd.FrameSelection(skip_first=17), [17, 18, 19]),
    (vd.FrameSelection(force_rate=20.0, cap=6), [0, 0, 1, 1, 2, 2]),
    (vd.FrameSelection(force_rate=5.0), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]),
    (vd.FrameSelection(force_rate=20.0, skip_first=3, every_nth=3, cap=3), [1, 3, 4]),
])
def test_selection_picks_the_right_frames(numbered_clip, selection, expected):
    frames = list(vd.iter_selected_frames(numbered_clip, selection))
    assert frame_ids(frames) == expected
    info = vd.probe_video(numbered_clip)
    assert vd.expected_count(vd.timeline_length(info, selection), selection) == len(expected)


def test_selection_on_image_folder_and_resize(clips_dir):
    selection = vd.FrameSelection(skip_first=5, every_nth=10, cap=3, width=216)
    frames = list(vd.iter_selected_frames(clips_dir / "tennis" / "frames", selection))
    assert len(frames) == 3 and frames[0].shape == (120, 216, 3)
    reference = vd.read_image(clips_dir / "tennis" / "frames" / "00015.png")
    assert abs(float(frames[1].mean()) - float(reference.mean())) < 1.0


@pytest.mark.parametrize("selection", [
    vd.FrameSelection(skip_first=3, every_nth=2),
    vd.FrameSelection(force_rate=20.0, skip_first=1),
    vd.FrameSelection(force_rate=7.0, every_nth=2),
])
def test_decode_single_frame_matches_the_stream(numbered_clip, selection):
    stream = list(vd.iter_selected_frames(numbered_clip, selection))
    for index in (0, 2, len(stream) - 1):
        single = vd.decode_single_frame(numbered_clip, index, selection)
        np.testing.assert_array_equal(single, stream[index])
    with pytest.raises(IndexError):
        vd.decode_single_frame(numbered_clip, len(stream) + 3, selection)


def test_decode_single_frame_seeks_in_h264(clips_dir):
    clip = clips_dir / "running_car" / "running_car.mp4"
    selection = vd.FrameSelection(skip_first=100, every_nth=5, width=243)
    stream = vd.iter_selected_frames(clip, selection)
    wanted = [next(stream) for _ in range(4)][3]
    np.testing.assert_array_equal(vd.decode_single_frame(clip, 3, selection), wanted)
    assert wanted.shape == (135, 243, 3)


def test_audio_window_follows_the_frames(numbered_clip):
    clip = read_audio(numbered_clip, start=0.3, duration=0.8)
    assert clip.sample_rate == SAMPLE_RATE and clip.samples.shape == (1, int(0.8 * SAMPLE_RATE))
    assert clip.samples[0, 0] == pytest.approx(0.03, abs=2e-4)  # 0.1 x 0.3 s
    assert clip.samples[0, -1] == pytest.approx(0.1 * (1.1 - 1 / SAMPLE_RATE), abs=2e-4)


@pytest.mark.parametrize("fmt", ["h264-mp4", "h264-10bit-mp4", "h265-mp4", "vp9-webm",
                                 "prores4444-mov", "ffv1-mkv", "png-sequence"])
def test_colour_chart_round_trip_keeps_channel_means(tmp_path, fmt):
    chart = colour_chart()
    target = tmp_path / f"chart.{ve.FORMATS[fmt].extension}"
    ve.encode_video(target, np.stack([chart] * 3), 25.0, fmt, crf=19)
    decoded = np.stack(list(vd.iter_selected_frames(target, vd.FrameSelection())))
    shift = decoded.reshape(-1, 3).mean(0) - chart.reshape(-1, 3).mean(0)
    assert np.abs(shift).max() <= 1.0, shift
    if fmt in ("ffv1-mkv", "png-sequence"):
        np.testing.assert_array_equal(decoded[0], chart)  # lossless


def test_swscale_default_path_would_shift_colours():
    """Why the decoder passes full-chroma accurate-rounding flags: the default path is biased."""
    import av

    chart = colour_chart()
    yuv = av.VideoFrame.from_ndarray(chart, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=1, dst_color_range=1)
    naive = yuv.to_ndarray(format="rgb24", src_colorspace=1, src_color_range=1)
    ours = vd.frame_to_array(yuv)
    assert np.abs(naive.reshape(-1, 3).mean(0) - chart.reshape(-1, 3).mean(0)).max() > 0.8
    assert np.abs(ours.reshape(-1, 3).mean(0) - chart.reshape(-1, 3).mean(0)).max() < 0.8


def test_odd_size_pads_for_h264_and_is_kept_by_vp9(tmp_path):
    frames = numbered_frames(2, height=17, width=33)
    h264 = ve.encode_video(tmp_path / "odd.mp4", frames, 25.0, "h264-mp4")
    vp9 = ve.encode_video(tmp_path / "odd.webm", frames, 25.0, "vp9-webm")
    assert (vd.probe_video(h264).width, vd.probe_video(h264).height) == (34, 18)
    assert (vd.probe_video(vp9).width, vd.probe_video(vp9).height) == (33, 17)


def test_encode_never_overwrites(tmp_path):
    target = tmp_path / "taken.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        ve.encode_video(target, numbered_frames(2), 25.0, "h264-mp4")
    assert target.read_bytes() == b"precious"


def test_failed_encode_removes_only_its_own_file(tmp_path):
    def stop(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt

    target = tmp_path / "partial.mkv"
    with pytest.raises(KeyboardInterrupt):
        ve.encode_video(target, numbered_frames(4), 25.0, "ffv1-mkv", on_frame=stop)
    assert not target.exists()


def test_alpha_needs_an_alpha_format(tmp_path):
    rgba = np.concatenate([numbered_frames(2), np.zeros((2, 24, 40, 1), np.uint8)], axis=-1)
    with pytest.raises(ValueError, match="cannot carry alpha"):
        ve.encode_video(tmp_path / "a.mp4", rgba, 25.0, "h264-mp4")
    assert not (tmp_path / "a.mp4").exists()


@pytest.mark.parametrize("announced", [3, 20, 40])
def test_decode_to_tensors_trusts_the_stream_not_the_header(numbered_clip, announced):
    from dataclasses import replace

    import torch

    from vanish.nodes.ops import video_frames as vf

    info = replace(vd.probe_video(numbered_clip), frame_count=announced)
    frames, alpha = vf.decode_to_tensors(numbered_clip, info, vd.FrameSelection(), keep_alpha=True,
                                         budget=10**9)
    assert frames.shape == (20, 24, 40, 3) and alpha.shape == (20, 24, 40)
    assert frame_ids(list(frames.numpy() * 255)) == list(range(20))
    assert torch.equal(alpha, torch.ones_like(alpha))  # frames without alpha are opaque


def test_budget_is_checked_before_and_during_decoding(numbered_clip):
    from dataclasses import replace

    from vanish.nodes.ops import video_frames as vf

    info = vd.probe_video(numbered_clip)
    per_frame = 24 * 40 * 3 * 4
    with pytest.raises(vf.FrameBudgetError) as error:
        vf.decode_to_tensors(numbered_clip, info, vd.FrameSelection(), keep_alpha=False,
                             budget=per_frame * 7)
    assert (error.value.count, error.value.fits) == (20, 7)
    short = replace(info, frame_count=5)  # the header lies: the stream goes on past the budget
    with pytest.raises(vf.FrameBudgetError):
        vf.decode_to_tensors(numbered_clip, short, vd.FrameSelection(), keep_alpha=False,
                             budget=per_frame * 7)


def test_tensor_frames_rounds_and_adds_alpha():
    import torch

    from vanish.nodes.ops import video_frames as vf

    images = torch.tensor([[[[0.0, 0.5, 1.0]]]])  # [1, 1, 1, 3]
    frames = vf.TensorFrames(images, torch.tensor([[[0.25]]]))
    assert len(frames) == 1 and frames[0].tolist() == [[[0, 128, 255, 64]]]
    with pytest.raises(IndexError):
        frames[1]


def rotated_clip(path: Path, degrees: int) -> np.ndarray:
    """A 64x32 clip stored landscape with a display matrix (as phones do); returns the stored frame."""
    import av

    stored = np.full((32, 64, 3), 40, np.uint8)
    stored[:8, :8] = (250, 30, 30)  # a red mark in the stored picture's top-left corner
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv444p"
        stream.set_display_rotation(degrees)
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return stored


@pytest.mark.parametrize("degrees, mark", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_phone_clips_load_upright(tmp_path, degrees, mark):
    """The display matrix turns the picture counter-clockwise; frames come out as a player shows them."""
    path = tmp_path / f"rot{degrees}.mp4"
    rotated_clip(path, degrees)
    info = vd.probe_video(path)
    upright = (32, 64) if degrees in (90, -90) else (64, 32)  # (width, height)
    assert (info.width, info.height, info.rotation) == (*upright, degrees % 360)
    frames = list(vd.iter_selected_frames(path, vd.FrameSelection()))
    single = vd.decode_single_frame(path, 1, vd.FrameSelection())
    for frame in (frames[0], single):
        assert frame.shape == (upright[1], upright[0], 3)
        red = np.argwhere((frame[..., 0] > 180) & (frame[..., 1] < 100))
        centre_y, centre_x = red.mean(0)
        vertical = "bottom" if centre_y > frame.shape[0] / 2 else "top"
        horizontal = "right" if centre_x > frame.shape[1] / 2 else "left"
        assert f"{vertical}-{horizontal}" == mark
    half = list(vd.iter_selected_frames(path, vd.FrameSelection(width=16)))[0]  # resize keeps it upright
    assert half.shape[:2] == (round(16 * upright[1] / upright[0]), 16)
