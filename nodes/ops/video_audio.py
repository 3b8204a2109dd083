"""Audio track reading, trimming and writing for the video nodes (ComfyUI-free, PyAV only).

Audio is handled as an :class:`AudioClip`: float32 ``[C, T]`` samples in -1..1 and a rate.
ComfyUI's AUDIO value is ``{"waveform": [B, C, T], "sample_rate": int}``; the node layer
converts between the two.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

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


def _start_seconds(stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def read_audio(path: Path, start: float, duration: float | None) -> AudioClip | None:
    """The first audio track of ``path`` from ``start`` seconds for ``duration`` seconds.

    Times count from the first VIDEO frame, so the audio stays in sync with the selected frames
    when the two streams start at different times (audio that starts late is padded with
    silence in front). Decoding stops once the window is complete.

    Returns:
        None when the file has no audio track.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        video_start = _start_seconds(container.streams.video[0]) if container.streams.video else 0.0
        rate = stream.rate
        channels = min(stream.channels, 2) or 1
        resampler = av.AudioResampler(format="fltp", layout=_LAYOUTS[channels], rate=rate)
        first = int(round((start + video_start - _start_seconds(stream)) * rate))
        wanted = None if duration is None else int(round(duration * rate))
        chunks: list[np.ndarray] = []
        have = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray()  # [C, n]
                    chunks.append(chunk)
                    have += chunk.shape[1]
                if wanted is not None and have >= first + wanted:
                    break
        except av.error.FFmpegError as exc:
            logger.warning("audio of %s could not be fully decoded: %s", path, exc)
        samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
    if first < 0:  # audio starts after the window start: pad silence in front
        samples = np.concatenate([np.zeros((channels, -first), np.float32), samples], axis=1)
        first = 0
    end = samples.shape[1] if wanted is None else first + wanted
    return AudioClip(np.ascontiguousarray(samples[:, first:end], dtype=np.float32), rate)


def trim_audio(clip: AudioClip, duration: float) -> AudioClip:
    """The first ``duration`` seconds of ``clip`` (shorter clips are kept as they are)."""
    keep = int(round(duration * clip.sample_rate))
    return AudioClip(clip.samples[:, :keep], clip.sample_rate)


def audio_rate_for(codec: str, rate: int) -> int:
    """The sample rate to encode ``rate`` Hz audio at with ``codec``: ``rate`` when the encoder
    takes it, else the nearest rate above it that it takes, else its highest (AAC: 192 kHz ->
    96 kHz, 7 kHz -> 7350 Hz)."""
    rates = getattr(av.codec.Codec(codec, "w"), "audio_rates", None)
    if not rates or rate in rates:
        return rate
    above = [r for r in rates if r >= rate]
    return min(above) if above else max(rates)


def add_audio_stream(container: av.container.OutputContainer, codec: str, clip: AudioClip,
                     rate: int | None = None):
    """Add an audio stream for ``clip`` (mono or stereo; more channels keep the first two)."""
    channels = min(clip.samples.shape[0], 2)
    if clip.samples.shape[0] > 2:
        logger.warning("audio has %d channels; saving the first two", clip.samples.shape[0])
    if not rate:  # the encoder resamples a rate it lacks (see encode_audio_packets)
        rate = audio_rate_for(codec, clip.sample_rate)
        if rate != clip.sample_rate:
            logger.info("%s takes no %d Hz audio: it is resampled to %d Hz", codec,
                        clip.sample_rate, rate)
    stream = container.add_stream(codec, rate=rate)
    stream.layout = _LAYOUTS[channels]
    return stream


def encode_audio_packets(stream, clip: AudioClip) -> list[av.Packet]:
    """Encode all of ``clip`` for ``stream`` (PyAV resamples to the codec's rate and format).

    The packets are returned, not muxed, so the caller can interleave them with video.
    """
    channels = min(clip.samples.shape[0], 2)
    samples = np.ascontiguousarray(np.clip(clip.samples[:channels], -1.0, 1.0), dtype=np.float32)
    second = clip.sample_rate
    packets: list[av.Packet] = []
    for begin in range(0, samples.shape[1], second):  # one-second frames
        frame = av.AudioFrame.from_ndarray(samples[:, begin:begin + second], format="fltp",
                                           layout=_LAYOUTS[channels])
        frame.sample_rate = clip.sample_rate
        frame.pts, frame.time_base = begin, Fraction(1, clip.sample_rate)
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def packet_seconds(packet: av.Packet) -> float:
    """Presentation time of a packet; packets without one sort last."""
    if packet.pts is None or packet.time_base is None:
        return float("inf")
    return float(packet.pts * packet.time_base)


def encode_audio(container: av.container.OutputContainer, stream, clip: AudioClip) -> None:
    """Encode and mux all of ``clip`` into ``stream`` (audio-only files)."""
    container.mux(encode_audio_packets(stream, clip))
