"""Encode frames (and an optional alpha matte and audio) to a video file or PNG sequence.

ComfyUI-free: frames come in as uint8 ``[T, H, W, 3]`` (RGB) or ``[T, H, W, 4]`` (RGBA).
Files are created with exclusive creation (``open(..., "xb")``, ``mkdir`` without
``exist_ok``), so an existing file is never overwritten; a failed encode removes only the
file it created. The encoder's drain after the last frame and the read-back check run on a
worker thread while the caller polls cancel (:mod:`.encode_finish`): a cancel lands within 2 s
whatever the size, and the abandoned file is removed.

Colour: every YUV stream is tagged BT.709 primaries/transfer/matrix with limited ("MPEG")
range, and the RGB->YUV conversion uses swscale's full-chroma accurate-rounding path with
area-averaged chroma, matching what :mod:`.video_decode` expects on the way back.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import av
import cv2
import numpy as np
from av.video.reformatter import Colorspace, ColorRange, Interpolation

from .encode_finish import finish_file
from .video_audio import AudioSource, add_audio_stream, encode_audio, encode_audio_packets, packet_seconds

logger = logging.getLogger(__name__)

VideoFormat = Literal["h264-mp4", "h264-10bit-mp4", "h265-mp4", "vp9-webm", "prores4444-mov",
                      "ffv1-mkv", "png-sequence"]
_ENCODE_FLAGS = int(Interpolation.AREA | Interpolation.FULL_CHR_H_INT
                    | Interpolation.FULL_CHR_H_INP | Interpolation.ACCURATE_RND)
_BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709 / AVCOL_SPC_BT709
BITEXACT_X264_PARAMS = "mbtree=0"
"""What ``bitexact=True`` adds to libx264's options. With the macroblock-tree rate control and
B-frames, the libx264 in PyAV's wheels reads memory it never wrote (8-bit, at widths that are not
a multiple of 8 macroblocks: 704, 800, 960, 972 px, not 640 or 768), so the same frames gave
different video packets from run to run, depending on what the heap held. Neither a fixed thread
count, frame threads, one thread, nor libx264's C code instead of its assembly stopped it; turning
the macroblock tree off did. Cost and measurements: bench/RESULTS.md, "Engine (session 7)"."""


@dataclass(frozen=True)
class FormatSpec:
    """How one output format is written.

    Attributes:
        extension: file extension (a folder suffix for the PNG sequence).
        codec: PyAV encoder name. pix_fmt / alpha_pix_fmt: pixel formats without / with alpha
            (None: the format cannot carry alpha). audio_codec: encoder for the sound track.
        crf_range: the codec's crf scale, or None when it has no crf (lossless formats).
        even_size: the encoder needs even width and height (4:2:0 in x264/x265).
    """

    extension: str
    codec: str
    pix_fmt: str
    alpha_pix_fmt: str | None
    audio_codec: str | None
    crf_range: tuple[int, int] | None
    even_size: bool = False
    audio_rate: int | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_yuv(self) -> bool:
        return self.pix_fmt.startswith("yuv")


FORMATS: dict[str, FormatSpec] = {
    "h264-mp4": FormatSpec("mp4", "libx264", "yuv420p", None, "aac", (0, 51), True,
                           options={"preset": "medium"}),
    "h264-10bit-mp4": FormatSpec("mp4", "libx264", "yuv420p10le", None, "aac", (0, 51), True,
                                 options={"preset": "medium"}),
    "h265-mp4": FormatSpec("mp4", "libx265", "yuv420p", None, "aac", (0, 51), True,
                           options={"preset": "medium", "x265-params": "log-level=error"}),
    "vp9-webm": FormatSpec("webm", "libvpx-vp9", "yuv420p", "yuva420p", "libopus", (0, 63),
                           audio_rate=48000,  # Opus only runs at 48 kHz (and lower)
                           options={"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}),
    "prores4444-mov": FormatSpec("mov", "prores_ks", "yuv444p10le", "yuva444p10le", "pcm_s16le",
                                 None, options={"profile": "4444", "vendor": "apl0"}),
    "ffv1-mkv": FormatSpec("mkv", "ffv1", "bgr0", "bgra", "flac", None,
                           options={"level": "3", "slicecrc": "1"}),
    "png-sequence": FormatSpec("png", "png", "rgb24", "rgba", "flac", None),
}
ALPHA_FORMATS = tuple(name for name, spec in FORMATS.items() if spec.alpha_pix_fmt)

MIN_FPS, MAX_FPS = 0.01, 1000.0
"""Frame rates Save Video writes (its fps widget's range). Below, ``frame_rate`` rounds to 0 (a
zero time base); far above, some streams were written whose frames do not decode."""
H265_MIN_SIZE = (64, 64)
"""Smallest width and height handed to libx265. The libx265 inside PyAV's wheels corrupts the heap
at some small sizes (34x18 aborts in every run, 48x32 in about half): ``bench/x265_min_size.py``
tries sizes in fresh processes, see bench/RESULTS.md (issue 11). Smaller frames are refused."""
MIN_AUDIO_RATE, MAX_AUDIO_RATE = 1000, 768_000
"""Audio sample rates Save Video takes; within them, a rate the encoder lacks is resampled (AAC
at 192 kHz is written at 96 kHz). Below 1 kHz the resampler fails and no sound is left to keep."""


def frame_size_problem(fmt: VideoFormat, width: int, height: int) -> str | None:
    """Why ``fmt`` cannot take ``width`` x ``height`` frames, or None when it can."""
    if FORMATS[fmt].codec == "libx265" and (width < H265_MIN_SIZE[0] or height < H265_MIN_SIZE[1]):
        return (f"{fmt} needs frames of at least {H265_MIN_SIZE[0]}x{H265_MIN_SIZE[1]} (the libx265 "
                f"encoder in PyAV crashes the whole process at some smaller sizes); these are "
                f"{width}x{height}")
    return None


def encoder_available(fmt: VideoFormat) -> bool:
    """Whether this PyAV build has the encoder ``fmt`` needs (wheels differ in their codecs)."""
    try:
        av.codec.Codec(FORMATS[fmt].codec, "w")
    except Exception:  # PyAV raises UnknownCodecError or ValueError depending on version
        return False
    return True


def frame_rate(fps: float) -> Fraction:
    """``fps`` as the fraction containers store (29.97002997 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column so height and width are even (``[T, H, W, C]``)."""
    t, h, w, c = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _to_av_frame(rgb: np.ndarray, spec: FormatSpec, pix_fmt: str, index: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb),
                                       format="rgba" if rgb.shape[2] == 4 else "rgb24")
    if spec.is_yuv:
        frame = frame.reformat(format=pix_fmt, dst_colorspace=int(Colorspace.ITU709),
                               dst_color_range=int(ColorRange.MPEG), interpolation=_ENCODE_FLAGS)
        frame.colorspace, frame.color_range = int(Colorspace.ITU709), int(ColorRange.MPEG)
    else:
        frame = frame.reformat(format=pix_fmt)
    frame.pts = index
    return frame


def _add_video_stream(container: av.container.OutputContainer, spec: FormatSpec, pix_fmt: str,
                      size: tuple[int, int], rate: Fraction, crf: int, bitexact: bool = False):
    stream = container.add_stream(spec.codec, rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    ctx = stream.codec_context
    ctx.time_base = 1 / rate
    options = dict(spec.options)
    if spec.crf_range is not None:
        options["crf"] = str(int(np.clip(crf, *spec.crf_range)))
    if spec.is_yuv:
        ctx.colorspace, ctx.color_range = _BT709, int(ColorRange.MPEG)
        ctx.color_primaries, ctx.color_trc = _BT709, _BT709
    if spec.codec == "libx265":
        stream.codec_tag = "hvc1"  # plays in QuickTime/Safari
    if bitexact and spec.codec == "libx264":
        options["x264-params"] = ":".join(filter(None, [options.get("x264-params"), BITEXACT_X264_PARAMS]))
    stream.options = options
    return stream


def encode_video(target: Path, frames: Sequence[np.ndarray], fps: float, fmt: VideoFormat, *,
                 crf: int = 19, audio: AudioSource | None = None,
                 metadata: dict[str, object] | None = None,
                 on_frame: Callable[[int], None] | None = None,
                 check_cancel: Callable[[], None] | None = None, bitexact: bool = False) -> Path:
    """Write ``frames`` (uint8 ``[T, H, W, 3|4]``) to a NEW file ``target`` (never overwritten).

    Args:
        fps: frames per second (> 0). fmt: a key of :data:`FORMATS`.
        crf: quality for crf codecs (lower is better; clipped to the codec's range).
        audio: sound to mux in (in memory, or a file's decoded as it is written); trimmed to the
            video's length.
        metadata: container tags (values that are not strings are stored as JSON).
        on_frame: called with the frame index after each frame (progress and cancel).
        check_cancel: called every ~0.05 s while the encoder drains after the last frame and the
            file is read back (seconds at 4K, on a worker thread: :mod:`.encode_finish`); it raises
            to cancel, like ``on_frame``. Ctrl-C is honoured there without it.
        bitexact: no random ids or version strings in the container, and no libx264 option that
            reads uninitialised memory (:data:`BITEXACT_X264_PARAMS`), so the same frames give the
            same bytes (the streaming engine's resumed runs equal uninterrupted ones).

    Raises:
        FileExistsError: ``target`` exists. ValueError: alpha frames for a format without alpha,
            a rate outside ``MIN_FPS..MAX_FPS``, a size the encoder cannot take, or a written
            stream that does not decode back.
    """
    spec = FORMATS[fmt]
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps {fps} is outside {MIN_FPS}..{MAX_FPS}")
    problem = frame_size_problem(fmt, frames[0].shape[1], frames[0].shape[0])
    if problem:
        raise ValueError(problem)
    if fmt == "png-sequence":
        return write_png_sequence(target, frames, audio=audio, fps=fps, on_frame=on_frame)
    alpha = frames[0].shape[2] == 4
    if alpha and spec.alpha_pix_fmt is None:
        raise ValueError(f"{fmt} cannot carry alpha; use one of {', '.join(ALPHA_FORMATS)}")
    pix_fmt = spec.alpha_pix_fmt if alpha else spec.pix_fmt
    height, width = frames[0].shape[:2]
    if spec.even_size and (height % 2 or width % 2):
        logger.warning("%s needs an even size: %dx%d is padded by one pixel", fmt, width, height)
    size = (width + width % 2, height + height % 2) if spec.even_size else (width, height)
    rate = frame_rate(fps)
    handle = open(target, "xb")
    try:
        drain = _encode_container(handle, spec, pix_fmt, size, rate, frames, crf, audio,
                                  metadata or {}, on_frame, bitexact)
    except BaseException:
        handle.close()
        target.unlink(missing_ok=True)  # only the file this call created
        raise
    # from here the container and the handle belong to the finishing thread
    finish_file(target, handle, drain, lambda: check_decodes(target, len(frames)), check_cancel)
    return target


def check_decodes(path: Path, count: int) -> None:
    """Raise ValueError unless ``path`` holds ``count`` video packets and its first frame decodes.

    Cheap (demuxing reads packet headers; one frame is decoded), and it catches a stream that
    was written but cannot be played back, which an encoder does not report itself.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0)
            first = next(iter(container.decode(stream)), None)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"the written file does not read back ({exc})") from exc
    if first is None or packets != count:
        raise ValueError(f"the written file reads back {packets} of {count} frames"
                         + ("" if first is not None else ", and none decodes"))


def _encode_container(handle, spec: FormatSpec, pix_fmt: str, size: tuple[int, int],
                      rate: Fraction, frames: Sequence[np.ndarray], crf: int,
                      audio: AudioSource | None, metadata: dict[str, object],
                      on_frame: Callable[[int], None] | None, bitexact: bool = False
                      ) -> Callable[[Callable[[], bool]], None]:
    """Encode every frame (and the sound up to it) into ``handle``; the drain that finishes it.

    Returns:
        ``drain(abandoned)``: flushes the encoder, muxes the rest of the sound and closes the
        container (run once, on the finishing thread; it stops early once ``abandoned()``). On an
        exception the container is closed here and nothing is returned.
    """
    options = {"movflags": "use_metadata_tags"} if spec.extension in ("mp4", "mov") else {}
    if bitexact:
        options["fflags"] = "+bitexact"
    container = av.open(handle, "w", format=spec.extension if spec.extension != "mkv" else "matroska",
                        options=options)
    try:
        for key, value in metadata.items():
            container.metadata[key] = value if isinstance(value, str) else json.dumps(value)
        video = _add_video_stream(container, spec, pix_fmt, size, rate, crf, bitexact)
        packets: Iterator[av.Packet] = iter(())  # audio, encoded and muxed in step with the video
        if audio is not None and audio.has_samples:
            sound = add_audio_stream(container, spec.audio_codec, audio, spec.audio_rate)
            packets = encode_audio_packets(sound, audio, len(frames) / float(rate))
        upcoming = next(packets, None)
        for index, rgb in enumerate(frames):
            rgb = pad_to_even(rgb[None])[0] if spec.even_size else rgb
            container.mux(video.encode(_to_av_frame(rgb, spec, pix_fmt, index)))
            while upcoming is not None and packet_seconds(upcoming) < (index + 1) / rate:
                container.mux(upcoming)
                upcoming = next(packets, None)
            if on_frame is not None:
                on_frame(index)
    except BaseException:
        container.close()
        raise
    return lambda abandoned: _drain(container, video, upcoming, packets, abandoned)


def _drain(container: av.container.OutputContainer, video, upcoming: av.Packet | None,
           packets: Iterator[av.Packet], abandoned: Callable[[], bool]) -> None:
    """Flush the encoder (its lookahead: seconds at 4K), mux the rest of the sound, close.

    Once ``abandoned()`` (the caller cancelled) it stops after the packet in hand: the encoder's
    remaining frames are never computed (closing a codec with frames inside takes milliseconds).
    """
    try:
        for packet in _flushed_packets(video):
            container.mux(packet)
            if abandoned():
                return
        while upcoming is not None and not abandoned():
            container.mux(upcoming)
            upcoming = next(packets, None)
    finally:
        container.close()


def _flushed_packets(video) -> Iterator[av.Packet]:
    """The encoder's last packets, one at a time as it finishes them (all at once where a PyAV
    lacks ``encode_lazy``; the stop after a cancel then waits for the whole drain)."""
    lazy = getattr(video.codec_context, "encode_lazy", None)
    if lazy is None:
        yield from video.encode(None)
        return
    for packet in lazy(None):
        packet.stream = video  # what ``video.encode`` sets on its packets
        yield packet


def write_png_sequence(folder: Path, frames: Sequence[np.ndarray], *, audio: AudioSource | None,
                       fps: float, on_frame: Callable[[int], None] | None = None) -> Path:
    """Write ``folder/00000.png ...`` (RGB or RGBA) into a NEW folder, plus ``audio.flac``.

    Raises:
        FileExistsError: ``folder`` exists.
    """
    folder.mkdir(parents=False, exist_ok=False)
    for index, rgb in enumerate(frames):
        code = cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR
        ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), code))
        if not ok:
            raise ValueError(f"PNG encoding failed for frame {index}")
        with open(folder / f"{index:05d}.png", "xb") as handle:
            handle.write(data.tobytes())
        if on_frame is not None:
            on_frame(index)
    if audio is not None and audio.has_samples:
        with open(folder / "audio.flac", "xb") as handle, av.open(handle, "w", format="flac") as out:
            encode_audio(out, add_audio_stream(out, "flac", audio), audio, len(frames) / fps)
    return folder
