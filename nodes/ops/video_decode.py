"""Decode a video file, a folder of numbered images or one image, frame by frame (ComfyUI-free).

A *source* is one of the three. :func:`open_source` probes it; :func:`iter_selected_frames`
decodes only what a :class:`FrameSelection` keeps, one uint8 ``[H, W, 3|4]`` frame at a time,
so the caller can fill a pre-allocated tensor under a memory budget. :func:`decode_single_frame`
seeks to one selected frame (for previews and prompt editing).

Frame selection, in this order (the VideoHelperSuite order users know):

1. ``force_rate > 0`` re-times a video to that rate (frames are repeated or dropped by their
   timestamps); an image sequence has no timing, so there it only sets the reported fps;
2. ``skip_first`` frames of that timeline are dropped;
3. every ``every_nth`` frame of the rest is kept;
4. at most ``cap`` frames are kept (0 = all).

Colour: YUV is converted with the stream's own matrix and range (BT.709 / BT.601 guess by size
when untagged, the mpv rule) and with swscale's full-chroma, accurate-rounding path. Its
default fast path shifts every channel by about -1 level in 255, which is the colour shift
users report from other loaders.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import av
import cv2
import numpy as np
from av.video.reformatter import Colorspace, ColorRange, Interpolation

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = ("mp4", "mov", "mkv", "webm", "avi", "m4v", "gif", "mpg", "mpeg", "flv", "wmv", "ts")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
IMAGE_SEQUENCE_FPS = 25.0
"""Reported rate of an image sequence without ``force_rate`` (images carry no timing)."""
FALLBACK_FPS = 25.0
"""Rate assumed for a video stream that declares none."""
_DECODE_FLAGS = (Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP
                 | Interpolation.ACCURATE_RND)
_TIME_EPS = 1e-6

SourceKind = Literal["video", "image_sequence", "image"]


@dataclass(frozen=True)
class FrameSelection:
    """Which frames to keep, and at what size (see the module docstring for the order).

    Attributes:
        skip_first: frames dropped from the start of the (re-timed) clip.
        cap: most frames kept; 0 keeps all.
        every_nth: keep one frame in this many (1 = all).
        force_rate: re-time a video to this fps first; 0 keeps the clip's own rate.
        width, height: output size; 0 keeps the source size, one of them 0 keeps the aspect.
    """

    skip_first: int = 0
    cap: int = 0
    every_nth: int = 1
    force_rate: float = 0.0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class VideoInfo:
    """What a source is (from :func:`probe_video`) or what was loaded from it.

    ``frame_count`` is exact for image sources and an estimate from the container for videos.
    """

    path: str
    kind: SourceKind
    fps: float
    width: int
    height: int
    frame_count: int
    duration: float
    has_audio: bool
    has_alpha: bool = False
    audio_sample_rate: int = 0
    audio_channels: int = 0
    rotation: int = 0  # degrees counter-clockwise the player turns the decoded frames (0/90/180/270)
    decode_warning: str = ""  # set by Load Video Frames when fewer frames decoded than announced


# --------------------------------------------------------------------------- probing
def source_kind(path: Path) -> SourceKind:
    """``video``, ``image_sequence`` (a folder) or ``image`` for an existing path."""
    if path.is_dir():
        return "image_sequence"
    if path.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS:
        return "image"
    return "video"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_image_files(folder: Path) -> list[Path]:
    """Images in ``folder`` in natural number order (``2.png`` before ``10.png``)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """One image file as uint8 ``[H, W, 3]`` RGB or ``[H, W, 4]`` RGBA (16-bit scaled down)."""
    data = np.fromfile(str(path), dtype=np.uint8)  # imdecode also handles non-ASCII paths
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"{path.name} is not a readable image")
    if image.dtype != np.uint8:
        scale = 255.0 if image.dtype.kind == "f" else 255.0 / np.iinfo(image.dtype).max
        image = np.clip(image.astype(np.float32) * scale + (0.0 if image.dtype.kind == "f" else 0.5),
                        0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)  # [H, W, 3]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return FALLBACK_FPS


def _has_alpha(fmt: av.VideoFormat) -> bool:
    return len(fmt.components) in (2, 4)


def probe_video(path: Path) -> VideoInfo:
    """Rate, size, frame count (estimated for videos), audio and alpha of a source.

    Raises:
        ValueError: the file cannot be opened as a video or image, or a folder has no images.
    """
    path = Path(path)
    kind = source_kind(path)
    if kind != "video":
        files = list_image_files(path) if kind == "image_sequence" else [path]
        if not files:
            raise ValueError(f"folder {path} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
        first = read_image(files[0])
        return VideoInfo(str(path), kind, IMAGE_SEQUENCE_FPS, first.shape[1], first.shape[0],
                         len(files), len(files) / IMAGE_SEQUENCE_FPS, False, first.shape[2] == 4)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            fps = _stream_fps(stream)
            duration = _stream_duration(container, stream)
            count = stream.frames or max(int(round(duration * fps)), 1)
            audio = container.streams.audio[0] if container.streams.audio else None
            ctx = stream.codec_context
            alpha = _has_alpha(ctx.format) if ctx.format else False
            alpha = alpha or stream.metadata.get("alpha_mode") == "1"
            rotation = _first_frame_rotation(container, stream)
            width, height = (ctx.height, ctx.width) if rotation in (90, 270) else (ctx.width, ctx.height)
            return VideoInfo(str(path), "video", fps, width, height, int(count),
                             duration or count / fps, audio is not None, alpha,
                             audio.rate if audio else 0, audio.channels if audio else 0, rotation)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path.name} is not a readable video ({exc})") from exc


def _rotation(frame: av.VideoFrame) -> int:
    """How far a player turns ``frame`` (its display matrix), counter-clockwise: 0, 90, 180 or 270.

    Phones store portrait clips as landscape pictures plus this matrix; players, browsers and
    ffmpeg turn them upright, so the frames a user sees are the turned ones. Mirroring in the
    matrix (rare) is not applied.
    """
    degrees = getattr(frame, "rotation", 0) or 0  # PyAV < 13 has no rotation: 0
    return int(round(degrees / 90.0)) % 4 * 90


def _first_frame_rotation(container: av.container.InputContainer, stream) -> int:
    """The rotation of the first decodable frame (0 when none decodes here)."""
    try:
        for frame in container.decode(stream):
            return _rotation(frame)
    except av.error.FFmpegError:
        pass  # probing stays lenient: the real decode reports a broken file with its name
    return 0


def _stream_duration(container: av.container.InputContainer, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return 0.0


# --------------------------------------------------------------------------- selection
SCALER_PIXEL_LIMIT = (2**31 - 1) // 8
"""FFmpeg's av_image_check_size: (width + 128) * (height + 128) must stay below INT_MAX / 8, so
swscale refuses e.g. 16384x16384 frames with a bare "Invalid argument"."""


class FrameTooLarge(ValueError):
    """The frame size is beyond what FFmpeg's scaler converts (see SCALER_PIXEL_LIMIT)."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        super().__init__(f"{width}x{height} frames are larger than FFmpeg's scaler converts "
                         f"((width + 128) x (height + 128) must stay below {SCALER_PIXEL_LIMIT:,}, "
                         "about 16000x16000)")


def check_scaler_size(width: int, height: int) -> None:
    """Raise :class:`FrameTooLarge` for sizes swscale refuses (checked before decoding)."""
    if (width + 128) * (height + 128) >= SCALER_PIXEL_LIMIT:
        raise FrameTooLarge(width, height)


def output_size(width: int, height: int, selection: FrameSelection) -> tuple[int, int]:
    """``(width, height)`` after the selection's resize (0 keeps, one 0 keeps the aspect)."""
    w, h = selection.width, selection.height
    if w <= 0 and h <= 0:
        return width, height
    if w <= 0:
        w = max(int(round(width * h / height)), 1)
    if h <= 0:
        h = max(int(round(height * w / width)), 1)
    return w, h


def output_fps(info: VideoInfo, selection: FrameSelection) -> float:
    """Rate of the selected frames: the (forced) rate divided by ``every_nth``."""
    base = selection.force_rate if selection.force_rate > 0 else info.fps
    return base / max(selection.every_nth, 1)


def timeline_rate(info: VideoInfo, selection: FrameSelection) -> float:
    """Rate of the timeline that ``skip_first`` counts in (the forced rate when set)."""
    return selection.force_rate if selection.force_rate > 0 else info.fps


def expected_count(timeline_frames: int, selection: FrameSelection) -> int:
    """How many frames a selection keeps from a timeline of ``timeline_frames`` frames."""
    remaining = max(timeline_frames - max(selection.skip_first, 0), 0)
    kept = math.ceil(remaining / max(selection.every_nth, 1))
    return min(kept, selection.cap) if selection.cap > 0 else kept


def timeline_length(info: VideoInfo, selection: FrameSelection) -> int:
    """Frames on the (re-timed) timeline: the source count, or duration x forced rate."""
    if selection.force_rate > 0 and info.kind == "video":
        return max(int(math.ceil(info.frame_count / info.fps * selection.force_rate - _TIME_EPS)), 1)
    return info.frame_count


def select_positions(timeline: Iterator[tuple[int, object]], selection: FrameSelection
                     ) -> Iterator[tuple[int, object]]:
    """Filter ``(position, item)`` pairs by skip/every-nth/cap; stops pulling at the cap."""
    kept = 0
    skip, nth = max(selection.skip_first, 0), max(selection.every_nth, 1)
    for position, item in timeline:
        if position >= skip and (position - skip) % nth == 0:
            kept += 1
            yield position, item
            if 0 < selection.cap <= kept:
                return


# --------------------------------------------------------------------------- video decoding
def _colorspace(frame: av.VideoFrame) -> int:
    """The frame's YUV matrix; untagged streams follow mpv's rule (HD -> BT.709, SD -> BT.601)."""
    tagged = int(frame.colorspace)
    if tagged in (1, 4, 5, 6, 7, 9):  # bt709, fcc, bt470bg, smpte170m, smpte240m, bt2020
        return tagged
    return int(Colorspace.ITU709 if frame.width >= 1280 or frame.height > 576 else Colorspace.ITU601)


def _color_range(frame: av.VideoFrame) -> int:
    tagged = int(frame.color_range)
    if tagged in (int(ColorRange.MPEG), int(ColorRange.JPEG)):
        return tagged
    return int(ColorRange.JPEG if frame.format.name.startswith("yuvj") else ColorRange.MPEG)


def _interpolation(src: tuple[int, int], dst: tuple[int, int]) -> int:
    if dst[0] * dst[1] < src[0] * src[1]:
        return int(Interpolation.AREA | _DECODE_FLAGS)
    if dst[0] * dst[1] > src[0] * src[1]:
        return int(Interpolation.BICUBIC | _DECODE_FLAGS)
    return int(Interpolation.BILINEAR | _DECODE_FLAGS)


def frame_to_array(frame: av.VideoFrame, size: tuple[int, int] | None = None,
                   keep_alpha: bool = False) -> np.ndarray:
    """A decoded frame as uint8 ``[H, W, 3]`` RGB (``[H, W, 4]`` RGBA when asked and present),
    turned upright as a player shows it (see :func:`_rotation`).

    Args:
        size: ``(width, height)`` of the upright result; None keeps the frame's size.
    """
    turns = _rotation(frame) // 90
    w, h = size if size is not None else (frame.width, frame.height)[::-1 if turns % 2 else 1]
    if turns % 2:
        w, h = h, w  # scale the stored picture, then turn it
    fmt = "rgba" if keep_alpha and _has_alpha(frame.format) else "rgb24"
    array = frame.to_ndarray(
        format=fmt, width=w, height=h, src_colorspace=_colorspace(frame),
        src_color_range=_color_range(frame), dst_color_range=int(ColorRange.JPEG),
        interpolation=_interpolation((frame.width, frame.height), (w, h)))
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _decoder(stream) -> av.CodecContext:
    """The stream's decoder; libvpx for VP8/VP9 with alpha (FFmpeg's own decoder drops alpha)."""
    name = stream.codec_context.name
    if stream.metadata.get("alpha_mode") == "1" and name in ("vp8", "vp9"):
        try:
            return av.CodecContext.create("libvpx-vp9" if name == "vp9" else "libvpx", "r")
        except Exception as exc:  # a PyAV build without libvpx: colours still decode
            logger.warning("no libvpx decoder (%s): the alpha channel of this clip is ignored", exc)
    stream.thread_type = "AUTO"
    return stream.codec_context


def _decode(container: av.container.InputContainer, stream) -> Iterator[av.VideoFrame]:
    decoder = _decoder(stream)
    try:
        for packet in container.demux(stream):
            try:
                frames = decoder.decode(packet)
            except av.error.EOFError:  # libvpx answers the final flush packet with EOF
                break
            yield from frames
    except av.error.FFmpegError as exc:
        raise ValueError(f"{Path(container.name).name} could not be decoded ({exc})") from exc


def _frame_time(frame: av.VideoFrame, time_base, fallback: float) -> float:
    if frame.pts is None or time_base is None:
        return fallback
    return float(frame.pts * time_base)


def _video_timeline(container: av.container.InputContainer, fps: float, force_rate: float
                    ) -> Iterator[tuple[int, av.VideoFrame]]:
    """``(timeline position, frame)``; with ``force_rate`` frames repeat or drop by timestamp."""
    stream = container.streams.video[0]
    frames = _decode(container, stream)
    if force_rate <= 0:
        yield from enumerate(frames)
        return
    position, previous, start, previous_time = 0, None, None, 0.0
    for index, frame in enumerate(frames):
        time = _frame_time(frame, stream.time_base, index / fps)
        start = time if start is None else start
        time -= start
        if previous is not None:  # `previous` covers [previous_time, time)
            while position / force_rate < time - _TIME_EPS:
                yield position, previous
                position += 1
        previous, previous_time = frame, time
    if previous is not None:  # the last frame lasts one source frame
        while position / force_rate < previous_time + 1.0 / fps - _TIME_EPS:
            yield position, previous
            position += 1


def iter_selected_frames(path: Path, selection: FrameSelection, *, keep_alpha: bool = False,
                         info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Decode the selected frames of a source one by one as uint8 ``[H, W, 3|4]``.

    Only kept frames are converted and scaled; decoding stops at the cap.

    Raises:
        ValueError: unreadable file, or an image of another size inside a sequence.
        FrameTooLarge: the video or the output size is beyond FFmpeg's scaler.
    """
    path = Path(path)
    info = info or probe_video(path)
    size = output_size(info.width, info.height, selection)
    if info.kind == "video":
        check_scaler_size(*size)
        check_scaler_size(info.width, info.height)
    if info.kind != "video":
        files = list_image_files(path) if info.kind == "image_sequence" else [path]
        for _, file in select_positions(iter(enumerate(files)), selection):
            image = read_image(file)
            if image.shape[:2] != (info.height, info.width):
                raise ValueError(f"{file.name} is {image.shape[1]}x{image.shape[0]}, but the first "
                                 f"image is {info.width}x{info.height}")
            yield _resize(image if keep_alpha else image[:, :, :3], size)
        return
    with av.open(str(path)) as container:
        timeline = _video_timeline(container, info.fps, selection.force_rate)
        for _, frame in select_positions(timeline, selection):
            yield frame_to_array(frame, size, keep_alpha)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def decode_single_frame(path: Path, index: int, selection: FrameSelection) -> np.ndarray:
    """Frame ``index`` of the SELECTED frames as uint8 ``[H, W, 3]``, decoding as little as possible.

    Videos seek to the key frame before the frame's time and decode forward from there.

    Raises:
        IndexError: ``index`` is past the selected frames. ValueError: unreadable source.
    """
    path = Path(path)
    info = probe_video(path)
    if index < 0 or (selection.cap > 0 and index >= selection.cap):
        raise IndexError(f"frame {index} is outside the selection")
    position = max(selection.skip_first, 0) + index * max(selection.every_nth, 1)
    size = output_size(info.width, info.height, selection)
    if info.kind == "video":
        check_scaler_size(*size)
        check_scaler_size(info.width, info.height)
    if info.kind != "video":
        files = list_image_files(path) if info.kind == "image_sequence" else [path]
        if position >= len(files):
            raise IndexError(f"frame {index} is past the {len(files)} images")
        return _resize(read_image(files[position])[:, :, :3], size)
    rate = selection.force_rate if selection.force_rate > 0 else info.fps
    target = position / rate  # seconds from the first frame
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if target > 0 and stream.time_base:
            container.seek(int((start + target) / stream.time_base), stream=stream, backward=True)
        # without force_rate pick the nearest frame (half a frame of slack for rounded pts)
        limit = target + (_TIME_EPS if selection.force_rate > 0 else 0.5 / info.fps)
        found, found_time = None, -1.0
        for frame in _decode(container, stream):
            time = _frame_time(frame, stream.time_base, 0.0) - start
            if time > limit:
                break
            found, found_time = frame, time
        if found is None or target - found_time > 1.0 / info.fps + _TIME_EPS:
            raise IndexError(f"frame {index} is past the end of {path.name}")
        return frame_to_array(found, size)
