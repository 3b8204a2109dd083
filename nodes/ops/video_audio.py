"""Audio track reading, trimming and writing for the video nodes (ComfyUI-free, PyAV only).

Audio is handled as an :class:`AudioClip`: float32 ``[C, T]`` samples in -1..1 and a rate.
ComfyUI's AUDIO value is ``{"waveform": [B, C, T], "sample_rate": int}``; the node layer
converts between the two. The streaming engine passes a file's sound through with an
:class:`AudioFileReader` instead, which decodes it a piece at a time while the video is encoded
(a decoded hour of stereo is 1.4 GB). Both give their samples as :meth:`chunks`, and the writers
take either.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Union

import av
import numpy as np

logger = logging.getLogger(__name__)

_LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class AudioClip:
    """Audio samples ``[C, T]`` float32 in -1..1 at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def has_samples(self) -> bool:
        return self.samples.shape[1] > 0

    def chunks(self, seconds: float | None = None) -> Iterator[np.ndarray]:
        """The samples as one-second ``[C, n]`` pieces, stopping after ``seconds`` (None: all)."""
        keep = self.samples.shape[1] if seconds is None else int(round(seconds * self.sample_rate))
        for begin in range(0, min(keep, self.samples.shape[1]), self.sample_rate):
            yield self.samples[:, begin:min(begin + self.sample_rate, keep)]


def _start_seconds(stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


class AudioFileReader:
    """The first audio track of a file from ``start`` seconds for ``duration`` seconds, decoded
    a piece at a time by :meth:`chunks` (nothing is held between pieces).

    Times count from the first VIDEO frame, so the audio stays in sync with the selected frames
    when the two streams start at different times (audio that starts late is padded with
    silence in front). Use :meth:`open`, which returns None for a file without sound.
    """

    def __init__(self, path: Path, start: float, duration: float | None, sample_rate: int, channels: int,
                 first: int, has_samples: bool):
        self.path, self.start, self.duration = path, start, duration
        self.sample_rate, self.channels, self.has_samples = sample_rate, channels, has_samples
        self._first = first  # source samples to skip (negative: silence to put in front)

    @classmethod
    def open(cls, path: Path, start: float = 0.0, duration: float | None = None) -> AudioFileReader | None:
        """A reader for ``path``'s sound, or None when it has no audio track."""
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            video_start = _start_seconds(container.streams.video[0]) if container.streams.video else 0.0
            rate = stream.rate
            first = int(round((start + video_start - _start_seconds(stream)) * rate))
            has_samples = False
            try:
                has_samples = any(frame.samples > 0 for frame in container.decode(stream))
            except av.error.FFmpegError:
                pass
            return cls(Path(path), start, duration, rate, min(stream.channels, 2) or 1, first, has_samples)

    def chunks(self, seconds: float | None = None) -> Iterator[np.ndarray]:
        """Float32 ``[C, n]`` pieces in order, at most ``min(duration, seconds)`` seconds in all.

        A track that cannot be decoded to its end stops early with a warning (what was decoded
        is kept), as a damaged file's sound does in a player.
        """
        limits = [round(v * self.sample_rate) for v in (self.duration, seconds) if v is not None]
        left = min(limits) if limits else None
        skip = self._first
        if skip < 0:  # the sound starts after the window: silence in front
            pad = -skip if left is None else min(-skip, left)
            if pad:
                yield np.zeros((self.channels, pad), np.float32)
            left = None if left is None else left - pad
            skip = 0
        if left == 0:
            return
        with av.open(str(self.path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=_LAYOUTS[self.channels], rate=self.sample_rate)
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray()  # [C, n]
                        if skip >= chunk.shape[1]:
                            skip -= chunk.shape[1]
                            continue
                        chunk = chunk[:, skip:] if left is None else chunk[:, skip:skip + left]
                        skip = 0
                        yield np.ascontiguousarray(chunk, dtype=np.float32)
                        if left is not None:
                            left -= chunk.shape[1]
                            if left <= 0:
                                return
            except av.error.FFmpegError as exc:
                logger.warning("audio of %s could not be fully decoded: %s", self.path, exc)


#: What the writers take: samples in memory, or a file's sound decoded as it is written.
AudioSource = Union[AudioClip, AudioFileReader]


def read_audio(path: Path, start: float, duration: float | None) -> AudioClip | None:
    """The first audio track of ``path`` from ``start`` seconds for ``duration`` seconds, in memory
    (see :class:`AudioFileReader` for the timing rules; decoding stops once the window is complete).

    Returns:
        None when the file has no audio track.
    """
    reader = AudioFileReader.open(path, start, duration)
    if reader is None:
        return None
    pieces = list(reader.chunks())
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((reader.channels, 0), np.float32)
    return AudioClip(np.ascontiguousarray(samples, dtype=np.float32), reader.sample_rate)


def audio_rate_for(codec: str, rate: int) -> int:
    """The sample rate to encode ``rate`` Hz audio at with ``codec``: ``rate`` when the encoder
    takes it, else the nearest rate above it that it takes, else its highest (AAC: 192 kHz ->
    96 kHz, 7 kHz -> 7350 Hz)."""
    rates = getattr(av.codec.Codec(codec, "w"), "audio_rates", None)
    if not rates or rate in rates:
        return rate
    above = [r for r in rates if r >= rate]
    return min(above) if above else max(rates)


def add_audio_stream(container: av.container.OutputContainer, codec: str, clip: AudioSource,
                     rate: int | None = None):
    """Add an audio stream for ``clip`` (mono or stereo; more channels keep the first two)."""
    channels = min(clip.channels, 2)
    if clip.channels > 2:
        logger.warning("audio has %d channels; saving the first two", clip.channels)
    if not rate:  # the encoder resamples a rate it lacks (see encode_audio_packets)
        rate = audio_rate_for(codec, clip.sample_rate)
        if rate != clip.sample_rate:
            logger.info("%s takes no %d Hz audio: it is resampled to %d Hz", codec,
                        clip.sample_rate, rate)
    stream = container.add_stream(codec, rate=rate)
    stream.layout = _LAYOUTS[channels]
    return stream


def encode_audio_packets(stream, clip: AudioSource, seconds: float | None = None) -> Iterator[av.Packet]:
    """Encode ``clip`` (its first ``seconds``; None: all) for ``stream``, lazily, in pts order.

    PyAV resamples to the codec's rate and format. The sound goes to the encoder in one-second
    frames whatever pieces the source gives. The packets are yielded, not muxed, so the caller
    can interleave them with video; a file's sound is decoded only as far as they are taken.
    """
    channels = min(clip.channels, 2)
    second = clip.sample_rate
    buffered: list[np.ndarray] = []
    have = begin = 0

    def frame_of(samples: np.ndarray, pts: int) -> av.AudioFrame:
        samples = np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=_LAYOUTS[channels])
        frame.sample_rate = clip.sample_rate
        frame.pts, frame.time_base = pts, Fraction(1, clip.sample_rate)
        return frame

    for piece in clip.chunks(seconds):
        buffered.append(piece[:channels])
        have += piece.shape[1]
        if have < second:
            continue
        joined = buffered[0] if len(buffered) == 1 else np.concatenate(buffered, axis=1)
        whole = have - have % second
        for offset in range(0, whole, second):
            yield from stream.encode(frame_of(joined[:, offset:offset + second], begin))
            begin += second
        buffered, have = ([joined[:, whole:]] if have > whole else []), have - whole
    if have:
        joined = buffered[0] if len(buffered) == 1 else np.concatenate(buffered, axis=1)
        yield from stream.encode(frame_of(joined, begin))
    yield from stream.encode(None)


def packet_seconds(packet: av.Packet) -> float:
    """Presentation time of a packet; packets without one sort last."""
    if packet.pts is None or packet.time_base is None:
        return float("inf")
    return float(packet.pts * packet.time_base)


def encode_audio(container: av.container.OutputContainer, stream, clip: AudioSource,
                 seconds: float | None = None) -> None:
    """Encode and mux ``clip`` (its first ``seconds``) into ``stream`` (audio-only files)."""
    for packet in encode_audio_packets(stream, clip, seconds):
        container.mux(packet)
