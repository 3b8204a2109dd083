"""Lazy frame sources: a video file decoded window by window, an image folder, frames in memory.

Every source reads ``read(start, stop)`` as uint8 ``[n, H, W, 3]`` RGB, the exact values Load
Video Frames would hold for those frames (``x / 255`` of them), so what stays outside the mask is
bit-identical to the node graph. Nothing the size of the clip is kept: a video source keeps one
open decoder (sequential reads continue where the last one stopped; other reads seek to the key
frame before) and one list of frame timestamps.

Sources pickle without their open decoder, so Ray workers and spawned children reopen the file.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import torch

from ..ops import video_decode as vd
from ..ops.video_frames import source_fingerprint
from .errors import EngineError

logger = logging.getLogger(__name__)

#: Bytes read from each end of a file for its cheap content fingerprint.
FINGERPRINT_BYTES = 1 << 20
_SOURCE_FIX = ("give a video (mp4, mov, mkv, webm, ...), an image, or a folder of numbered images; "
               "re-export the file if it is damaged.")


class FrameSource:
    """Base class: ``num_frames``, ``height``, ``width``, ``fps``, ``has_audio``, ``audio_path``."""

    num_frames: int
    height: int
    width: int
    fps: float
    has_audio: bool = False
    audio_path: Path | None = None
    description: str = "frames"
    input_name: str = "source"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop - 1`` as uint8 ``[n, H, W, 3]``."""
        raise NotImplementedError

    def read_rgba(self, start: int, stop: int) -> np.ndarray:
        """Like :meth:`read`, with the alpha channel when the source has one (``[n, H, W, 3|4]``)."""
        return self.read(start, stop)

    def identity(self) -> str:
        """A string that changes when the source's content changes (the resume key)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (reads reopen them)."""

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.num_frames:
            raise IndexError(f"frames {start}..{stop} outside 0..{self.num_frames}")


def file_identity(path: Path) -> str:
    """Size, modification time and a hash of the first and last MiB of ``path``."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        if stat.st_size > 2 * FINGERPRINT_BYTES:
            handle.seek(-FINGERPRINT_BYTES, os.SEEK_END)
            digest.update(handle.read(FINGERPRINT_BYTES))
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def _probe(path: Path, input_name: str) -> vd.VideoInfo:
    if not path.exists():
        raise EngineError(input_name, f"points to {path}, which does not exist.",
                          "give an existing video file, image or folder of images.")
    if not os.access(path, os.R_OK):
        raise EngineError(input_name, f"points to {path}, which cannot be read (permission denied).",
                          "give a file you can read, or fix its permissions.")
    try:
        return vd.probe_video(path)
    except (ValueError, OSError) as exc:
        if "no video stream" in str(exc):
            raise EngineError(input_name, f"{path.name} has no video stream (an audio-only or data file).",
                              "give a file with video in it.") from exc
        raise EngineError(input_name, f"{path} cannot be read: {exc}.", _SOURCE_FIX) from exc


class VideoFileSource(FrameSource):
    """A video file, decoded window by window.

    Args:
        path: the file. size: ``(width, height)`` to scale every frame to (mask videos), or None.
    """

    def __init__(self, path: Path, size: tuple[int, int] | None = None, input_name: str = "source",
                 info: vd.VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.input_name = input_name
        self.info = info or _probe(self.path, input_name)
        self.size = size
        self.width, self.height = size if size is not None else (self.info.width, self.info.height)
        self.fps = self.info.fps
        self.has_audio = self.info.has_audio
        self.audio_path = self.path if self.info.has_audio else None
        self.description = str(self.path)
        self.keep_alpha = self.info.has_alpha
        self._pts = self._index_timestamps()
        self.num_frames = len(self._pts)
        if self.num_frames == 0:
            raise EngineError(input_name, f"{self.path.name} has a video stream but no frame could be read.",
                              _SOURCE_FIX)
        self._position = {pts: i for i, pts in enumerate(self._pts)}
        self._container = None
        self._frames: Iterator | None = None
        self._next = -1  # index of the frame the open decoder yields next (-1: none open)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_container=None, _frames=None, _next=-1)
        return state

    def _index_timestamps(self) -> list[int]:
        """Presentation timestamps of every frame, in display order, from the packets (no decoding)."""
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                # packets the demuxer marks as discarded (edit-list pre-roll) never become frames
                stamps = [p.pts for p in container.demux(stream)
                          if p.size > 0 and not getattr(p, "is_discard", False)]
        except av.error.FFmpegError as exc:
            raise EngineError(self.input_name, f"{self.path} cannot be read: {exc}.", _SOURCE_FIX) from exc
        if any(pts is None for pts in stamps) or len(set(stamps)) != len(stamps):
            raise EngineError(self.input_name, f"{self.path.name} has frames without timestamps, so it "
                              "cannot be read window by window.",
                              "re-encode it to mp4 or mkv (any editor or ffmpeg -i in.x out.mp4).")
        return sorted(stamps)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._frames, self._next = None, None, -1

    def _open_at(self, index: int) -> None:
        self.close()
        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        if index > 0:
            self._container.seek(int(self._pts[index]), stream=stream, backward=True, any_frame=False)
        self._frames = vd._decode(self._container, stream)
        self._next = -2 if index > 0 else 0  # after a seek the position is read from the timestamps

    def _next_frame(self) -> tuple[int, av.VideoFrame]:
        while True:
            frame = next(self._frames)  # type: ignore[arg-type]
            if self._next == -2:
                index = self._position.get(frame.pts)
                if index is None:
                    continue
            else:
                index = self._next
            self._next = index + 1
            return index, frame

    def read_rgba(self, start: int, stop: int) -> np.ndarray:
        self._check_range(start, stop)
        channels = 4 if self.keep_alpha else 3
        out = np.empty((stop - start, self.height, self.width, channels), np.uint8)
        if stop == start:
            return out
        if self._frames is None or not (0 <= self._next <= start):
            self._open_at(start)
        try:
            filled = 0
            while filled < stop - start:
                index, frame = self._next_frame()
                if index < start:
                    continue
                if index != start + filled:
                    raise ValueError(f"frame {start + filled} could not be decoded")
                array = vd.frame_to_array(frame, self.size, self.keep_alpha)
                if array.shape[2] != channels:  # a frame without alpha in a stream with alpha
                    array = np.concatenate([array, np.full(array.shape[:2] + (1,), 255, np.uint8)], axis=2)
                out[filled] = array
                filled += 1
        except (ValueError, StopIteration, av.error.FFmpegError) as exc:
            self.close()
            raise EngineError(self.input_name, f"{self.path.name} could not be decoded at frames "
                              f"{start}..{stop - 1}: {exc}.", _SOURCE_FIX) from exc
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        frames = self.read_rgba(start, stop)
        return frames[..., :3] if frames.shape[-1] == 4 else frames

    def identity(self) -> str:
        return f"video:{file_identity(self.path)}:{self.size}"


class ImageSource(FrameSource):
    """A folder of numbered images (natural order) or one image (one frame)."""

    def __init__(self, path: Path, size: tuple[int, int] | None = None, input_name: str = "source",
                 info: vd.VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.input_name = input_name
        self.info = info or _probe(self.path, input_name)
        self.files = vd.list_image_files(self.path) if self.info.kind == "image_sequence" else [self.path]
        self.size = size
        self.width, self.height = size if size is not None else (self.info.width, self.info.height)
        self.fps = self.info.fps
        self.num_frames = len(self.files)
        self.keep_alpha = self.info.has_alpha
        self.description = str(self.path)

    def read_rgba(self, start: int, stop: int) -> np.ndarray:
        self._check_range(start, stop)
        channels = 4 if self.keep_alpha else 3
        out = np.empty((stop - start, self.height, self.width, channels), np.uint8)
        for i, file in enumerate(self.files[start:stop]):
            try:
                image = vd.read_image(file)
            except (ValueError, OSError) as exc:
                raise EngineError(self.input_name, f"{file} cannot be read: {exc}.", _SOURCE_FIX) from exc
            if image.shape[:2] != (self.info.height, self.info.width):
                raise EngineError(self.input_name, f"{file.name} is {image.shape[1]}x{image.shape[0]}, but "
                                  f"the first image is {self.info.width}x{self.info.height}.",
                                  "give a folder whose images all have one size.")
            if image.shape[2] != channels:
                image = image[..., :3] if channels == 3 else np.concatenate(
                    [image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
            out[i] = vd._resize(image, (self.width, self.height))
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        frames = self.read_rgba(start, stop)
        return frames[..., :3] if frames.shape[-1] == 4 else frames

    def identity(self) -> str:
        if self.info.kind == "image":
            return f"image:{file_identity(self.path)}:{self.size}"
        return f"images:{self.path.resolve()}:{source_fingerprint(self.path)}:{self.size}"


class ArraySource(FrameSource):
    """Frames already in memory: uint8 ``[T, H, W, 3]`` or an IMAGE float tensor ``[T, H, W, 3]`` 0..1.

    Float frames become uint8 with Save Video's rule (``rint(clip(x, 0, 1) * 255)``).
    """

    def __init__(self, frames: np.ndarray | torch.Tensor, fps: float = vd.IMAGE_SEQUENCE_FPS,
                 input_name: str = "source") -> None:
        if frames.ndim != 4 or frames.shape[-1] not in (3, 4) or frames.shape[0] < 1:
            raise EngineError(input_name, f"has shape {list(frames.shape)}; frames in memory must be "
                              "[frames, height, width, 3].", "pass uint8 RGB frames or a ComfyUI IMAGE.")
        self.frames = frames
        self.input_name = input_name
        self.num_frames, self.height, self.width = (int(s) for s in frames.shape[:3])
        self.fps = float(fps)
        self.description = f"{self.num_frames} frames in memory"

    def read_rgba(self, start: int, stop: int) -> np.ndarray:
        self._check_range(start, stop)
        part = self.frames[start:stop]
        if isinstance(part, torch.Tensor):
            if part.dtype == torch.uint8:
                return part.cpu().numpy().copy()  # never a view: callers paste into what they get
            values = part.detach().to("cpu", torch.float32).numpy()
            scaled = np.clip(values, 0.0, 1.0) * np.float32(255)
            return np.rint(scaled, out=scaled).astype(np.uint8)
        if part.dtype != np.uint8:
            scaled = np.clip(part.astype(np.float32), 0.0, 1.0) * np.float32(255)
            return np.rint(scaled, out=scaled).astype(np.uint8)
        return np.array(part, copy=True)  # never a view of the caller's frames

    def read(self, start: int, stop: int) -> np.ndarray:
        frames = self.read_rgba(start, stop)
        return frames[..., :3] if frames.shape[-1] == 4 else frames

    def identity(self) -> str:
        digest = hashlib.sha256()
        data = self.frames.detach().cpu().contiguous().numpy() if isinstance(self.frames, torch.Tensor) else \
            np.ascontiguousarray(self.frames)
        digest.update(str((data.dtype, data.shape)).encode())
        digest.update(memoryview(data).cast("B"))
        return f"array:{digest.hexdigest()}"


def open_source(spec, *, input_name: str = "source", size: tuple[int, int] | None = None,
                fps: float | None = None) -> FrameSource:
    """A :class:`FrameSource` for a path (video file, image folder, one image) or frames in memory.

    Args:
        spec: ``str``/``Path``, a uint8 ``[T, H, W, 3]`` array, an IMAGE tensor, or a FrameSource.
        size: ``(width, height)`` to scale frames to (mask sources use the video's size).
        fps: the rate of frames in memory (default 25).
    Raises:
        EngineError: missing, unreadable, no video stream, an empty folder.
    """
    if isinstance(spec, FrameSource):
        return spec
    if isinstance(spec, (np.ndarray, torch.Tensor)):
        return ArraySource(spec, fps or vd.IMAGE_SEQUENCE_FPS, input_name)
    if not isinstance(spec, (str, os.PathLike)):
        raise EngineError(input_name, f"is a {type(spec).__name__}; expected a path or frames in memory.",
                          "give a video file, an image folder, an image, or a [T, H, W, 3] array.")
    path = Path(spec).expanduser()
    info = _probe(path, input_name)
    if info.kind == "video":
        return VideoFileSource(path, size, input_name, info)
    return ImageSource(path, size, input_name, info)
