"""The streamed sound: a file's audio decoded piece by piece while the video is encoded.

The streaming engine passes the source's sound through without holding it decoded (an hour of
stereo is 1.4 GB of floats); these tests pin that the pieces equal the in-memory read, that the
written file is the same either way, and that encoding does not hold the decoded track.
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from vanish.nodes.ops import video_encode as ve
from vanish.nodes.ops.video_audio import AudioClip, AudioFileReader, read_audio

RATE = 48000


def tone(seconds: float, channels: int = 2) -> AudioClip:
    t = np.arange(int(seconds * RATE)) / RATE
    left = 0.3 * np.sin(2 * np.pi * 440 * t) * np.minimum(1.0, t)  # a fade-in: no two seconds alike
    return AudioClip(np.stack([left, 0.5 * left][:channels]).astype(np.float32), RATE)


def small_frames(count: int) -> np.ndarray:
    rng = np.random.default_rng(count)
    return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sound_clip(tmp_path_factory) -> Path:
    """8 s of 32x32 video at 5 fps with 8 s of stereo FLAC sound."""
    path = tmp_path_factory.mktemp("sound") / "clip.mkv"
    return ve.encode_video(path, small_frames(40), 5.0, "ffv1-mkv", audio=tone(8.0))


@pytest.mark.parametrize("start, duration", [(0.0, None), (0.0, 2.5), (1.3, 3.0), (7.5, 2.0), (9.0, 1.0)])
def test_reader_pieces_equal_the_in_memory_read(sound_clip, start, duration):
    reader = AudioFileReader.open(sound_clip, start, duration)
    pieces = list(reader.chunks())
    expected = round(min(duration if duration is not None else 8.0, max(0.0, 8.0 - start)) * RATE)
    assert len(pieces) >= expected // 4608  # decoded a piece at a time (FLAC frames of 4608 samples)
    joined = np.concatenate(pieces, axis=1) if pieces else np.zeros((2, 0), np.float32)
    np.testing.assert_array_equal(joined, read_audio(sound_clip, start, duration).samples)
    assert joined.shape == (2, expected)


def test_reader_limit_in_seconds_stops_early(sound_clip):
    reader = AudioFileReader.open(sound_clip)
    joined = np.concatenate(list(reader.chunks(seconds=1.25)), axis=1)
    np.testing.assert_array_equal(joined, read_audio(sound_clip, 0.0, 1.25).samples)


def test_sound_starting_after_the_video_is_padded_in_front(tmp_path, sound_clip):
    # a reader whose window starts before the sound does: silence first, then the sound
    reader = AudioFileReader.open(sound_clip, 0.0, 2.0)
    reader._first = -RATE // 2  # the sound starts half a second after the first frame
    joined = np.concatenate(list(reader.chunks()), axis=1)
    assert joined.shape == (2, 2 * RATE)
    assert not joined[:, :RATE // 2].any()
    np.testing.assert_array_equal(joined[:, RATE // 2:], read_audio(sound_clip, 0.0, 1.5).samples)


def test_file_without_sound_has_no_reader(tmp_path):
    silent = ve.encode_video(tmp_path / "silent.mkv", small_frames(3), 5.0, "ffv1-mkv")
    assert AudioFileReader.open(silent) is None


@pytest.mark.parametrize("fmt", ["h264-mp4", "ffv1-mkv", "png-sequence"])
def test_writing_from_the_reader_equals_writing_the_decoded_track(tmp_path, sound_clip, fmt):
    frames = small_frames(30)  # 6 s: the 8 s track is trimmed to the video
    ext = ve.FORMATS[fmt].extension
    streamed = ve.encode_video(tmp_path / f"streamed.{ext}", frames, 5.0, fmt, bitexact=True,
                               audio=AudioFileReader.open(sound_clip))
    in_memory = ve.encode_video(tmp_path / f"memory.{ext}", frames, 5.0, fmt, bitexact=True,
                                audio=read_audio(sound_clip, 0.0, None))
    if fmt == "png-sequence":
        streamed, in_memory = streamed / "audio.flac", in_memory / "audio.flac"
    assert streamed.read_bytes() == in_memory.read_bytes()
    written = read_audio(streamed, 0.0, None).samples.shape
    assert written[0] == 2 and abs(written[1] - 6 * RATE) <= 1024  # trimmed to the video (AAC pads a frame)


def test_encoding_does_not_hold_the_decoded_track(tmp_path):
    """60 s of stereo is 23 MB decoded; streamed, the encoder holds a few seconds of it at most."""
    seconds = 60
    source = ve.encode_video(tmp_path / "long.mkv", small_frames(seconds), 1.0, "ffv1-mkv", audio=tone(seconds))
    whole = 2 * seconds * RATE * 4
    frames = small_frames(seconds)
    tracemalloc.start()
    try:
        ve.encode_video(tmp_path / "out.mp4", frames, 1.0, "h264-mp4", audio=AudioFileReader.open(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole / 6, f"peak {peak / 2**20:.1f} MiB while the track is {whole / 2**20:.1f} MiB decoded"
    tracemalloc.start()
    try:  # the same measure sees the in-memory path hold it (the test can tell the two apart)
        ve.encode_video(tmp_path / "out2.mp4", frames, 1.0, "h264-mp4", audio=read_audio(source, 0.0, None))
        _, peak_memory = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_memory > whole * 0.9
