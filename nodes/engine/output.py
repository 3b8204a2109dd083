"""The encoder stage: stitch each segment's pixels into the decoded originals and encode, atomically.

:class:`StitchedFrames` is the frame sequence the existing encoder (``video_encode``) reads: frame
``i`` is the source's decoded frame with the owning segment's rectangle pasted in, made when the
encoder asks for it, one segment's owned frames at a time. The encoder writes to a temporary
name beside the output; :func:`publish` renames it to the final name without ever replacing a
file the user already has (unless asked to), so a reader never sees a half-written output (the
naming, removal and no-replace publishing live in :mod:`..ops.atomic_output`, shared with Save Video).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..ops import video_encode as ve
from ..ops.atomic_output import is_taken, partial_path, publish_first_free, remove_partial
from ..ops.video_audio import AudioFileReader
from .errors import EngineError
from .segments import Segment, SegmentOutput
from .settings import OutputOptions
from .sources import FrameSource

__all__ = ["StitchedFrames", "check_output", "encode", "partial_path", "preview_of", "publish",
           "remove_partial"]

#: Long side of the preview frames :func:`preview_of` keeps.
PREVIEW_LONG_SIDE = 256


class StitchedFrames:
    """The output frames as a lazy sequence: ``len()``, ``[i]`` and iteration, in order.

    Args:
        source: the original frames. segments: the plan, in order.
        get_output: ``get_output(segment)`` -> its :class:`SegmentOutput` (computed, loaded from
            the work folder or fetched from Ray).
        on_frame: called with each frame index as it is produced (progress, cancel).
    """

    def __init__(self, source: FrameSource, segments: list[Segment],
                 get_output: Callable[[Segment], SegmentOutput]) -> None:
        self.source, self.segments, self.get_output = source, segments, get_output
        self._owner = np.empty(source.num_frames, np.int64)
        for k, segment in enumerate(segments):
            self._owner[segment.core_start:segment.core_stop] = k
        self._window: tuple[int, np.ndarray] | None = None  # (segment index, its owned frames)

    def __len__(self) -> int:
        return self.source.num_frames

    def _frames_of(self, k: int) -> np.ndarray:
        if self._window is None or self._window[0] != k:
            self._window = None  # free the previous window first
            segment = self.segments[k]
            output = self.get_output(segment)
            frames = self.source.read(segment.core_start, segment.core_stop)  # [n, H, W, 3]
            if output.rect is not None:
                y0, y1, x0, x1 = output.rect
                frames[:, y0:y1, x0:x1] = output.pixels
            self._window = (k, frames)
        return self._window[1]

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = int(self._owner[index])
        return self._frames_of(k)[index - self.segments[k].core_start]

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]


def preview_of(frames: list[np.ndarray]) -> np.ndarray:
    """A few frames downscaled to a long side of :data:`PREVIEW_LONG_SIDE` (uint8 ``[k, h, w, 3]``)."""
    import cv2

    if not frames:
        return np.zeros((0, 1, 1, 3), np.uint8)
    h, w = frames[0].shape[:2]
    scale = min(1.0, PREVIEW_LONG_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) if scale < 1 else f for f in frames])


# --------------------------------------------------------------------------- the output file
def check_output(output: Path, options: OutputOptions, overwrite: bool) -> Path:
    """Validate the output path before any work: folder exists and is writable, name is free.

    Returns:
        The output path (absolute).
    Raises:
        EngineError: unknown format, missing encoder, missing or unwritable folder, existing file.
    """
    if options.format not in ve.FORMATS:
        raise EngineError("format", f"is {options.format!r}; expected one of {list(ve.FORMATS)}.",
                          "pick one of those formats.")
    if not ve.encoder_available(options.format):  # type: ignore[arg-type]
        raise EngineError("format", f"{options.format} needs an encoder this PyAV build lacks.",
                          "pick h264-mp4 or ffv1-mkv.")
    output = Path(output).expanduser().absolute()
    folder = output.parent
    if not folder.is_dir():
        raise EngineError("output", f"is in {folder}, which is not an existing folder.",
                          "create the folder first, or write somewhere else.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EngineError("output", f"is in {folder}, which is not writable.",
                          "choose a folder you can write to.")
    if is_taken(output) and not overwrite:
        raise EngineError("output", f"{output} already exists; it is never overwritten.",
                          "choose another name, delete the file, or pass overwrite=True.")
    return output


def encode(frames: StitchedFrames, target: Path, fps: float, options: OutputOptions,
           audio_path: Path | None, on_frame: Callable[[int], None],
           check_cancel: Callable[[], None] | None = None) -> None:
    """Encode ``frames`` to the NEW path ``target`` with the source's sound (when asked).

    ``on_frame`` is called after each frame and ``check_cancel`` while the encoder drains after the
    last one; both raise to cancel.

    Raises:
        EngineError: the disk filled up or the folder stopped being writable (``target`` removed).
    """
    audio: AudioFileReader | None = None  # decoded piece by piece while the frames are encoded
    if options.audio and audio_path is not None:
        audio = AudioFileReader.open(audio_path)
    try:
        ve.encode_video(target, frames, fps, options.format, crf=options.crf, audio=audio,  # type: ignore[arg-type]
                        metadata=options.metadata, on_frame=on_frame, check_cancel=check_cancel,
                        bitexact=True)
    except OSError as exc:
        remove_partial(target)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise EngineError("output", f"the disk holding {target.parent} is full (or the file size "
                              f"limit was reached) while writing the video: {exc.strerror}.",
                              "free some space (or write to another disk) and run again: finished "
                              "segments are kept in the work folder and reused.") from exc
        raise EngineError("output", f"writing into {target.parent} failed: {exc}.",
                          "check the folder (permissions, disk) and run again.") from exc
    except MemoryError:
        remove_partial(target)
        raise
    except ValueError as exc:  # the encoder refused the size or rate, or the file did not read back
        remove_partial(target)
        raise EngineError("format", f"{options.format} could not write this clip: {exc}.",
                          "pick another format (ffv1-mkv and h264-mp4 take any size), or "
                          "resize the clip.") from exc
    except BaseException:
        remove_partial(target)
        raise


def publish(partial: Path, output: Path, overwrite: bool,
            if_taken: Callable[[Path], Path] | None = None) -> Path:
    """Give the finished temporary output its final name, atomically, never replacing a user's file.

    When ``output`` was taken while the job ran (another save, the user), ``if_taken(output)``
    (when given) names the next candidate (the streaming node: its next free counter); without it
    the job fails and its result is discarded. Returns the name the output now has.
    """
    if overwrite:
        if output.is_dir() and not output.is_symlink():
            raise EngineError("output", f"{output} is a folder; it is not replaced.", "choose another name.")
        os.replace(partial, output)
        return output
    published = publish_first_free(partial, output, if_taken)
    if published is None:
        raise EngineError("output", f"{output} appeared while the job ran; it is never overwritten.",
                          "choose another name; the result is discarded.")
    return published
