"""Video in and out: Load Video Frames and Save Video (PyAV; no ffmpeg binary, no subprocess).

Load Video Frames decodes a video, a folder of numbered images or one image from ComfyUI's
input folder (upload widget) or a path, keeps the selected frames, and also returns the sound
(core AUDIO), an optional MASK and a ``VANISH_VIDEO_INFO`` value that Save Video reuses.
Save Video writes IMAGE (+ MASK as alpha, + AUDIO) with ComfyUI's output naming, atomically (a
hidden partial beside the output, published under a free name once complete).
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple

import av
import torch

from . import _comfy
from ._errors import VanishError
from ._layout import check_image, check_mask, match_mask_to_frames
from .ops import atomic_output
from .ops import video_decode as vd
from .ops import video_encode as ve
from .ops import video_frames as vf
from .ops.video_audio import AudioClip, read_audio

logger = logging.getLogger(__name__)

LOAD = "Load Video Frames"
SAVE = "Save Video"
VIDEO_INFO = "VANISH_VIDEO_INFO"
RAM_BUDGET_FRACTION = 0.75
"""Share of the RAM available now that loaded frames may take (the rest stays for the graph)."""
SILENT_SAMPLE_RATE = 44100
SILENT_KEY = "vanish_silent"
"""Marks the silent AUDIO returned for clips without sound; Save Video muxes no track for it."""
SILENT_MAX_SECONDS = 3600.0
"""Longest silent track returned; clips at absurd rates (force_rate 0.001: 1000 s a frame) get this."""
MAX_SKIPPED_NAMES = 1000
"""Taken names Save Video skips after ComfyUI's counter before it gives up (a prefix in a folder
that other tools fill with the same pattern)."""


# --------------------------------------------------------------------------- sources
def resolve_source(video: str, path: str = "") -> Path | None:
    """``path`` when set (absolute, or relative to the input folder), else the widget's file.

    None when neither names anything (the input folder itself is never a source).
    """
    text = (path or "").strip().strip('"').strip("'")
    if text:
        candidate = Path(text).expanduser()
        return candidate if candidate.is_absolute() else _comfy.input_directory() / candidate
    if not (video or "").strip():
        return None
    return _comfy.annotated_path(video.strip())


def _unusable_path(source: Path, input_name: str) -> VanishError | None:
    """An error for a path the OS refuses to even look up (too long a name, a loop of links)."""
    try:
        source.exists()
    except OSError as exc:
        text = str(source)
        shown = text if len(text) <= 100 else f"{text[:80]}... ({len(text)} characters)"
        return VanishError(LOAD, input_name, f"is not a usable path ({exc.strerror or exc}): {shown}.",
                           "give a shorter path: each folder or file name at most 255 bytes, the "
                           "whole path at most 4096.")
    return None


def _probe(source: Path | None, input_name: str) -> vd.VideoInfo:
    if source is None:
        raise VanishError(LOAD, input_name, "names no file.",
                          "choose or upload a video in 'video', or type a file or folder in 'path'.")
    unusable = _unusable_path(source, input_name)
    if unusable is not None:
        raise unusable
    if not source.exists():
        raise VanishError(LOAD, input_name, f"points to {source}, which does not exist.",
                          "upload the video with the widget, or give an existing file or folder path.")
    try:
        return vd.probe_video(source)
    except (ValueError, OSError) as exc:
        raise VanishError(LOAD, input_name, f"cannot be read: {exc}.",
                          "give a video (mp4, mov, mkv, webm, ...), an image, or a folder of numbered "
                          "images; re-export the file if it is damaged.") from exc


# --------------------------------------------------------------------------- loading
def _selection_error(info: vd.VideoInfo, selection: vd.FrameSelection, input_name: str
                     ) -> VanishError:
    total = vd.timeline_length(info, selection)
    clip = "the mask clip" if input_name == "mask_path" else "the clip"
    return VanishError(
        LOAD, "skip_first_frames",
        f"leaves no frames: {clip} has about {total} frames and skip_first_frames is "
        f"{selection.skip_first}.", f"set skip_first_frames below {total}.")


def _memory_error(exc: vf.FrameBudgetError) -> VanishError:
    width, height = exc.size
    return VanishError(
        LOAD, "frame_load_cap",
        f"would load {exc.count} frames of {width}x{height} ({exc.count * exc.per_frame / 1e9:.1f} GB), "
        f"but only about {exc.budget / 1e9:.1f} GB of RAM can be used now; about {exc.fits} frames fit.",
        f"set frame_load_cap to {exc.fits} or less (load the rest in parts with skip_first_frames), "
        "raise select_every_nth, or set custom_width/custom_height smaller.")


def load_selected(source: Path, info: vd.VideoInfo, selection: vd.FrameSelection,
                  keep_alpha: bool, input_name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Decode the selection into IMAGE ``[T, H, W, 3]`` (+ alpha ``[T, H, W]``) under the budget."""
    progress = _comfy.Progress(vd.expected_count(vd.timeline_length(info, selection), selection))

    def tick() -> None:
        _comfy.throw_if_interrupted()
        progress.update()

    try:
        return vf.decode_to_tensors(source, info, selection, keep_alpha=keep_alpha, on_frame=tick,
                                    budget=int(_comfy.available_ram() * RAM_BUDGET_FRACTION))
    except vf.FrameBudgetError as exc:
        raise _memory_error(exc) from None
    except vf.NoFramesSelected:
        raise _selection_error(info, selection, input_name) from None
    except vd.FrameTooLarge as exc:
        resized = bool(selection.width or selection.height) and exc.size != (info.width, info.height)
        fix = ("set custom_width/custom_height so the frames stay below about 16000x16000 pixels "
               "(e.g. 8192x8192)." if resized else "shrink the clip with another tool first (e.g. "
               "to 8192x8192): FFmpeg's converter cannot read frames this large.")
        raise VanishError(LOAD, "custom_width" if resized else input_name,
                          f"asks for frames FFmpeg's scaler cannot convert: {exc}.", fix) from None
    except ValueError as exc:
        raise VanishError(LOAD, input_name, f"could not be decoded: {exc}.",
                          "re-export the clip, or check that every image of the folder has one size."
                          ) from exc


ASPECT_TOLERANCE = 0.01
"""Relative aspect-ratio difference (beyond one pixel of rounding) at which a mask is refused."""


def _check_mask_aspect(mask: vd.VideoInfo, clip_size: tuple[int, int]) -> None:
    """Refuse a mask whose shape differs from the clip's: resizing would stretch it off the object."""
    clip_w, clip_h = clip_size
    fitted_h = mask.height * clip_w / mask.width  # the mask's height at the clip's width
    if abs(fitted_h - clip_h) > max(1.0, ASPECT_TOLERANCE * clip_h):
        raise VanishError(LOAD, "mask_path", f"is {mask.width}x{mask.height} but the clip is "
                          f"{clip_w}x{clip_h}: another aspect ratio, so resizing it would stretch "
                          "the mask away from the object.",
                          f"export the mask at the clip's size ({clip_w}x{clip_h}) or the same "
                          "aspect ratio (crop or pad it to match first).")


def _check_mask_count(mask: torch.Tensor, mask_kind: str, count: int) -> None:
    if mask_kind == "image" or mask.shape[0] == count:
        return
    raise VanishError(LOAD, "mask_path", f"gives {mask.shape[0]} mask frames for the {count} frames "
                      "loaded (after the same skip/cap/every-nth selection).",
                      "give one mask per frame of the clip (same length and frame rate), or ONE "
                      "mask image to use for every frame.")


def load_mask(mask_source: Path, selection: vd.FrameSelection, size: tuple[int, int],
              threshold: float, clip_size: tuple[int, int] | None = None,
              count: int | None = None) -> torch.Tensor:
    """A mask file/video/folder as MASK ``[T, H, W]`` at ``size`` (one image -> one frame).

    The mask is the alpha channel when the file has a non-opaque one, else the brightest of
    R, G, B (white = 1). ``threshold > 0`` turns it into 0/1 (``>= threshold`` is 1).

    Raises:
        VanishError: the mask's aspect differs from ``clip_size`` (the clip's own size), or it
            gives another number of frames than ``count`` (one image is always fine).
    """
    info = _probe(mask_source, "mask_path")
    if clip_size is not None:
        _check_mask_aspect(info, clip_size)
    width, height = size
    resized = replace(selection, width=width, height=height)
    if info.kind == "image":  # one mask image serves every frame
        resized = vd.FrameSelection(width=width, height=height)
    frames, alpha = load_selected(mask_source, info, resized, info.has_alpha, "mask_path")
    if alpha is not None and float(alpha.min()) < 1.0:
        mask = alpha
    else:
        mask = frames.amax(dim=-1)  # [T, H, W]
    del frames
    if count is not None:
        _check_mask_count(mask, info.kind, count)
    if threshold > 0:
        mask = (mask >= threshold).float()
    return mask.contiguous()


def audio_for(source: Path, info: vd.VideoInfo, selection: vd.FrameSelection, count: int) -> dict:
    """Core AUDIO for the selected frames' time span (silent, marked, when the clip has none)."""
    rate = vd.timeline_rate(info, selection)
    start = max(selection.skip_first, 0) / rate
    duration = count * max(selection.every_nth, 1) / rate
    clip = read_audio(source, start, duration) if info.kind == "video" and info.has_audio else None
    if clip is None or clip.samples.shape[1] == 0:  # no track, or it ends before the frames
        return silent_audio(duration)
    return {"waveform": torch.from_numpy(clip.samples).unsqueeze(0), "sample_rate": clip.sample_rate}


def silent_audio(duration: float) -> dict:
    """Marked silent AUDIO of ``duration`` seconds (at most SILENT_MAX_SECONDS).

    The waveform is one zero expanded to its length (a stride-0 view): it costs 4 bytes however
    long the clip claims to be. Consumers that need real memory call ``.contiguous()``.
    """
    seconds = min(max(duration, 0.0), SILENT_MAX_SECONDS) if math.isfinite(duration) else SILENT_MAX_SECONDS
    length = int(round(seconds * SILENT_SAMPLE_RATE))
    waveform = torch.zeros((1, 1, 1)).expand(1, 1, length)  # [B, C, T], no memory per sample
    return {"waveform": waveform, "sample_rate": SILENT_SAMPLE_RATE, SILENT_KEY: True}


# --------------------------------------------------------------------------- Load Video Frames
class VanishLoadVideoFrames:
    """Load a video, an image folder or an image as IMAGE frames, with audio, mask and info."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        files = _comfy.list_input_files(vd.VIDEO_EXTENSIONS + vd.IMAGE_EXTENSIONS)
        return {
            "required": {
                "video": (files, {"video_upload": True, "tooltip":
                          "A video (or image) in ComfyUI's input folder; the upload button adds one. "
                          "Ignored when 'path' is set."}),
                "skip_first_frames": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip":
                                      "Frames dropped from the start (counted after force_rate)."}),
                "frame_load_cap": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip":
                                   "Most frames to load; 0 loads all. Lower it when RAM runs out."}),
                "select_every_nth": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip":
                                     "Keep one frame in this many (2 halves the frames and the fps)."}),
                "force_rate": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.001,
                               "tooltip": "Re-time the video to this fps first (frames repeat or "
                                          "drop); 0 keeps its own rate. For image folders it only "
                                          "sets the fps (default 25)."}),
                "custom_width": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip":
                                 "Resize to this width; 0 keeps it (or follows the aspect ratio)."}),
                "custom_height": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip":
                                  "Resize to this height; 0 keeps it (or follows the aspect ratio)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip":
                         "A video file, an image, or a folder of numbered images (absolute, or "
                         "relative to the input folder). Overrides 'video' when set."}),
                "mask_path": ("STRING", {"default": "", "tooltip":
                              "A mask video, mask image folder or ONE mask image (used for every "
                              "frame). Resized to the frames and selected like them. White (or "
                              "opaque alpha) = 1."}),
                "mask_threshold": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "0 keeps the mask's grey levels; above 0 makes it "
                                              "0/1 (values >= threshold become 1)."}),
            },
        }

    RETURN_TYPES = ("IMAGE", "MASK", "AUDIO", "FLOAT", "INT", VIDEO_INFO)
    RETURN_NAMES = ("frames", "mask", "audio", "fps", "frame_count", "video_info")
    OUTPUT_TOOLTIPS = (
        "The selected frames, [frames, height, width, 3] in 0..1.",
        "From mask_path if set, else the clip's alpha channel, else one empty mask.",
        "The sound of the selected span (silent when the clip has none).",
        "Frames per second of the loaded frames (force_rate / select_every_nth applied).",
        "Number of frames loaded.",
        "Size, rate and source of the loaded clip, for Save Video.",
    )
    FUNCTION = "load"
    CATEGORY = "Vanish/video"
    DESCRIPTION = ("Loads a video (or a folder of numbered images, or one image) frame by frame under "
                   "a memory budget, with skip/cap/every-nth/force-rate selection, optional resize, "
                   "its sound and an optional mask.")

    def load(self, video: str, skip_first_frames: int, frame_load_cap: int, select_every_nth: int,
             force_rate: float, custom_width: int, custom_height: int, path: str = "",
             mask_path: str = "", mask_threshold: float = 0.0) -> tuple:
        source = resolve_source(video, path)
        input_name = "path" if (path or "").strip() else "video"
        info = _probe(source, input_name)
        if (mask_path or "").strip():  # a missing mask fails now, not after the whole clip decoded
            _probe(resolve_source("", mask_path), "mask_path")
        selection = _make_selection(skip_first_frames, frame_load_cap, select_every_nth,
                                    force_rate, custom_width, custom_height)
        frames, alpha = load_selected(source, info, selection, info.has_alpha, input_name)
        count, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
        warning = shortfall_warning(source, info, selection, count)
        if (mask_path or "").strip():
            mask = load_mask(resolve_source("", mask_path), selection, (width, height), mask_threshold,
                             clip_size=(info.width, info.height), count=count)
        elif alpha is not None:
            mask = (alpha >= mask_threshold).float() if mask_threshold > 0 else alpha
        else:
            mask = torch.zeros((1, height, width))
        fps = vd.output_fps(info, selection)
        loaded = vd.VideoInfo(str(source), info.kind, fps, width, height, count, count / fps,
                              info.has_audio, alpha is not None, info.audio_sample_rate,
                              info.audio_channels, decode_warning=warning)
        audio = audio_for(source, info, selection, count)
        return frames, mask, audio, fps, count, loaded

    @classmethod
    def IS_CHANGED(cls, video: str, path: str = "", mask_path: str = "", **_: object) -> str:
        try:
            key = vf.source_fingerprint(resolve_source(video, path))
            if (mask_path or "").strip():
                key += vf.source_fingerprint(resolve_source("", mask_path))
        except OSError as exc:  # an unusable path: the run itself reports it clearly
            return f"unusable:{exc.errno}:{video}:{path}:{mask_path}"
        return key

    @classmethod
    def VALIDATE_INPUTS(cls, video: str):
        """Exempts ``video`` from ComfyUI's list check ('path' may override it; "[output]" names).

        ComfyUI repeats a message returned here once for every input named in this signature, so
        it names only ``video`` and judges nothing: whether 'video', 'path' or 'mask_path' is
        missing needs all three, and :meth:`load` says which, once, before decoding anything.
        """
        return True


SHORTFALL_TOLERANCE = 0.02
"""Share of the announced frames that may be missing without a warning (containers that only
estimate their length from the duration are off by a frame or two)."""


def shortfall_warning(source: Path, info: vd.VideoInfo, selection: vd.FrameSelection, count: int
                      ) -> str:
    """A warning (logged, and kept in video_info) when a video decoded fewer frames than its
    container announces: a damaged or cut-short file decodes partway without an error."""
    expected = vd.expected_count(vd.timeline_length(info, selection), selection)
    missing = expected - count
    if info.kind != "video" or missing <= max(1, int(SHORTFALL_TOLERANCE * expected)):
        return ""
    text = (f"{LOAD}: {source.name} decoded {count} of the {expected} frames its container "
            f"announces; the file is probably damaged or cut short, and the last {missing} frames "
            "are missing. Re-export or re-download it for the whole clip.")
    logger.warning(text)
    return text


def _make_selection(skip: int, cap: int, nth: int, force_rate: float, width: int, height: int
                    ) -> vd.FrameSelection:
    limits = {"skip_first_frames": (skip, 0), "frame_load_cap": (cap, 0),
              "select_every_nth": (nth, 1), "force_rate": (force_rate, 0),
              "custom_width": (width, 0), "custom_height": (height, 0)}
    for name, (value, lowest) in limits.items():
        if not math.isfinite(float(value)) or value < lowest:
            raise VanishError(LOAD, name, f"is {value}; it must be a finite number of at least "
                              f"{lowest}.", f"set {name} to {lowest} or more.")
    return vd.FrameSelection(int(skip), int(cap), int(nth), float(force_rate), int(width), int(height))


# --------------------------------------------------------------------------- Save Video
MAX_NAME_BYTES = atomic_output.MAX_NAME_BYTES
"""Longest file or folder name (bytes) on the common file systems (ext4, NTFS, APFS)."""
COUNTER_SUFFIX = len("_00000_.mp4") + 4
"""What Save Video appends to the prefix's last part (counter, extension), with room to spare."""


def check_prefix(prefix: str) -> str:
    """Refuse output prefixes that are absolute, climb out of the output folder, hold a NUL
    byte, or have a part longer than a file name may be."""
    text = (prefix or "").strip()
    if "\x00" in text:
        raise VanishError(SAVE, "filename_prefix", "contains a NUL character (\\x00), which no file "
                          "name may hold.", "retype the prefix, e.g. 'vanish/clip'.")
    parts = Path(text.replace("\\", "/")).parts
    if not text or ".." in parts or Path(text).is_absolute() or text.startswith(("/", "\\")):
        raise VanishError(SAVE, "filename_prefix",
                          f"is {prefix!r}; it must be a name inside the output folder.",
                          "use a plain name or subfolder/name such as 'vanish/clip' (no '..', no "
                          "absolute path).")
    for index, part in enumerate(parts):
        room = MAX_NAME_BYTES - (COUNTER_SUFFIX if index == len(parts) - 1 else 0)
        if len(part.encode("utf-8")) > room:
            raise VanishError(SAVE, "filename_prefix",
                              f"has a part of {len(part.encode('utf-8'))} bytes ({part[:40]!r}...); "
                              f"file names may have at most {MAX_NAME_BYTES} bytes, and the counter "
                              "and extension are added to the last part.",
                              f"shorten each part between '/' to at most {room} characters.")
    return text


def check_fps(fps: object, video_info: vd.VideoInfo | None) -> float:
    """The rate to save at: video_info's when connected, else ``fps``; within MIN_FPS..MAX_FPS."""
    value = video_info.fps if video_info is not None else fps
    name = "video_info" if video_info is not None else "fps"
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = float("nan")
    if not math.isfinite(rate) or not ve.MIN_FPS <= rate <= ve.MAX_FPS:
        fix = ("set fps to the clip's rate (e.g. 25)" if name == "fps" else
               "raise force_rate (or lower select_every_nth) in Load Video Frames, or disconnect "
               "video_info and set fps")
        shown = f"{rate:.6g}" if math.isfinite(rate) else repr(value)
        raise VanishError(SAVE, name, f"gives {shown} frames per second; Save Video writes "
                          f"{ve.MIN_FPS:g} to {ve.MAX_FPS:g}.", fix + ".")
    return rate


def workflow_metadata(prompt: object, extra_pnginfo: object) -> dict:
    """The container tags Save Video writes: ComfyUI's ``prompt`` and ``workflow`` (when given),
    so the saved file drops back into ComfyUI as the graph that made it."""
    workflow = extra_pnginfo.get("workflow") if isinstance(extra_pnginfo, dict) else None
    return {k: v for k, v in (("prompt", prompt), ("workflow", workflow)) if v is not None}


def check_audio(audio: object) -> AudioClip | None:
    """Core AUDIO -> :class:`AudioClip` (first batch item); None for no/silent-marker audio."""
    if audio is None or (isinstance(audio, dict) and audio.get(SILENT_KEY)):
        return None
    waveform = audio.get("waveform") if isinstance(audio, dict) else None
    rate = audio.get("sample_rate") if isinstance(audio, dict) else None
    if not isinstance(waveform, torch.Tensor) or waveform.ndim not in (2, 3) or not rate or rate <= 0:
        raise VanishError(SAVE, "audio", "is not a ComfyUI AUDIO value {waveform [B, C, T], sample_rate}.",
                          "connect an AUDIO output (e.g. Load Video Frames' audio or Load Audio).")
    if not ve.MIN_AUDIO_RATE <= rate <= ve.MAX_AUDIO_RATE:
        raise VanishError(SAVE, "audio", f"has a sample rate of {rate} Hz; Save Video writes sound "
                          f"at {ve.MIN_AUDIO_RATE} to {ve.MAX_AUDIO_RATE} Hz (rates an encoder "
                          "lacks are resampled).", "resample the audio (e.g. to 48000 Hz), or "
                          "disconnect 'audio'.")
    samples = (waveform[0] if waveform.ndim == 3 else waveform).float().cpu()  # [C, T]
    if not bool(torch.isfinite(samples).all()):
        raise VanishError(SAVE, "audio", "contains NaN or infinite samples.",
                          "check the node that produced the sound.")
    return AudioClip(samples.numpy(), int(rate))


class _Naming(NamedTuple):
    """Where Save Video's files go: ``folder/filename_NNNNN_suffix`` (suffix ``.mp4``, or ``png``
    for a PNG-sequence folder), shown to ComfyUI under ``subfolder``."""

    folder: Path
    filename: str
    subfolder: str
    suffix: str

    def path(self, counter: int) -> Path:
        return self.folder / f"{self.filename}_{counter:05}_{self.suffix}"


def _naming(prefix: str, size: tuple[int, int], extension: str, folder_suffix: bool
            ) -> tuple[_Naming, int]:
    """ComfyUI's naming for ``prefix`` (its folder created) and the counter it proposes."""
    try:
        folder, filename, counter, subfolder = _comfy.save_path(prefix, size[0], size[1])
    except ValueError as exc:
        raise VanishError(SAVE, "filename_prefix", f"cannot be used: {exc}.",
                          "use a name inside the output folder such as 'vanish/clip'.") from exc
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a part of the path is a file, no permission, read-only disk, ...
        raise _output_error(folder, exc) from None
    return _Naming(folder, filename, subfolder, "png" if folder_suffix else f".{extension}"), counter


def _free_name(naming: _Naming, start: int) -> tuple[Path, int]:
    """The first name from counter ``start`` on that nothing holds: ``(path, counter)``."""
    for counter in range(start, start + MAX_SKIPPED_NAMES):  # never overwrite: skip taken names
        path = naming.path(counter)
        if not atomic_output.is_taken(path):
            return path, counter
    raise VanishError(SAVE, "filename_prefix", f"has {MAX_SKIPPED_NAMES} existing files after the "
                      "next counter.", "choose another prefix.")


def _new_target(prefix: str, size: tuple[int, int], extension: str, folder_suffix: bool
                ) -> tuple[Path, str, Callable[[Path], Path]]:
    """The next free ``prefix_NNNNN_`` name, its subfolder (nothing is created under it), and the
    name to take instead if it is taken before the output is published (the next free counter)."""
    naming, counter = _naming(prefix, size, extension, folder_suffix)
    target, counter = _free_name(naming, counter)
    return target, naming.subfolder, lambda taken: _free_name(naming, counter + 1)[0]


def _output_error(path: Path, exc: OSError) -> VanishError:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or (path.exists() and not path.is_dir()):
        reason = "a part of this path is a file, not a folder"
    return VanishError(SAVE, "filename_prefix", f"leads to {path}, which cannot be written: {reason}.",
                       "choose another prefix, or make ComfyUI's output folder a writable folder "
                       "(check its permissions and free space).")


class VanishSaveVideo:
    """Encode IMAGE (+ MASK as alpha, + AUDIO) into the output folder and preview it."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "filename_prefix": ("STRING", {"default": "vanish/video", "tooltip":
                                    "Name (and subfolders) inside the output folder; a counter is "
                                    "added and nothing existing is overwritten."}),
                "format": (list(ve.FORMATS), {"default": "h264-mp4", "tooltip":
                           "h264/h265 mp4 plays everywhere; vp9-webm, prores4444-mov, ffv1-mkv and "
                           "png-sequence keep a mask as alpha; ffv1-mkv and png-sequence are lossless."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 63, "tooltip":
                        "Quality for h264/h265 (0-51) and vp9 (0-63): lower is better and larger. "
                        "Ignored by lossless formats and ProRes."}),
                "fps": ("FLOAT", {"default": 25.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                        "tooltip": "Frames per second (video_info's rate wins when connected)."}),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "Frames to save, [frames, height, width, 3]."}),
                "mask": ("MASK", {"tooltip": "With images: saved as alpha (1 = opaque) in formats "
                                             "that carry it. Alone: saved as a black/white matte."}),
                "audio": ("AUDIO", {"tooltip": "Sound to mux in, cut to the video's length."}),
                "video_info": (VIDEO_INFO, {"tooltip": "From Load Video Frames: reuses its fps."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the saved file (the folder for a PNG sequence).",)
    FUNCTION = "save"
    CATEGORY = "Vanish/video"
    OUTPUT_NODE = True
    DESCRIPTION = ("Saves frames as H.264/H.265/VP9/ProRes 4444/FFV1 video or a PNG sequence with "
                   "BT.709-tagged true colours, optional alpha from a mask, and sound.")

    def save(self, filename_prefix: str, format: str, crf: int, fps: float, images=None, mask=None,
             audio=None, video_info=None, prompt=None, extra_pnginfo=None) -> dict:
        frames8 = prepare_frames(images, mask, format)
        rate = check_fps(fps, video_info)
        clip = check_audio(audio)
        prefix = check_prefix(filename_prefix)
        progress = _comfy.Progress(len(frames8))
        metadata = workflow_metadata(prompt, extra_pnginfo)
        target, subfolder = write_new_file(
            prefix, format, frames8, rate, crf, clip, metadata,
            on_frame=lambda i: (_comfy.throw_if_interrupted(), progress.set(i + 1)),
            check_cancel=_comfy.throw_if_interrupted)
        return {"ui": preview_entries(target, subfolder, format), "result": (str(target),)}


def write_new_file(prefix: str, fmt: str, frames: vf.TensorFrames, fps: float, crf: int,
                   audio: AudioClip | None, metadata: dict, on_frame,
                   check_cancel=None) -> tuple[Path, str]:
    """Encode into the next free ``prefix_NNNNN_`` name, atomically; ``(path, subfolder)``.

    The encoder writes to a hidden partial name beside the target (:mod:`.ops.atomic_output`), so
    nothing appears under the final name until the file is complete; it is then published without
    replacing anything: if another save took the name meanwhile, the finished file takes the next
    free counter (no re-encode). A failure or cancel removes the partial. ``on_frame`` is called
    after each frame, ``check_cancel`` while the encoder drains after the last one (both raise to
    cancel; see ``video_encode.encode_video``)."""
    height, width = frames.images.shape[1:3]
    target, subfolder, next_name = _new_target(prefix, (width, height), ve.FORMATS[fmt].extension,
                                               fmt == "png-sequence")
    partial = atomic_output.partial_path(target, atomic_output.new_key())
    try:
        try:
            ve.encode_video(partial, frames, fps, fmt, crf=crf, audio=audio, metadata=metadata,
                            on_frame=on_frame, check_cancel=check_cancel)
        except OSError as exc:
            raise _output_error(target.parent, exc) from None
        except (av.error.FFmpegError, ValueError) as exc:  # the encoder refused or the check failed
            raise VanishError(SAVE, "format", f"{fmt} could not write {len(frames)} frames of "
                              f"{width}x{height} at {fps:g} fps: {exc}.",
                              "choose another format (h264-mp4 or ffv1-mkv take most sizes and "
                              "rates), or change the size or fps.") from exc
        try:
            published = atomic_output.publish_first_free(partial, target, next_name, MAX_SKIPPED_NAMES)
        except OSError as exc:
            raise _output_error(target.parent, exc) from None
        if published is None:
            raise VanishError(SAVE, "filename_prefix", f"{target.name} and the names after it kept being taken "
                              "by other saves.", "run the save again, or choose another prefix.")
        return published, subfolder
    except BaseException:
        atomic_output.remove_partial(partial)  # gone already where the encoder removed it itself
        raise


def prepare_frames(images, mask, fmt: str) -> vf.TensorFrames:
    """Check IMAGE/MASK for Save Video and pair them (mask alone -> matte frames)."""
    if fmt not in ve.FORMATS:
        raise VanishError(SAVE, "format", f"is {fmt!r}.", f"choose one of {', '.join(ve.FORMATS)}.")
    if not ve.encoder_available(fmt):
        usable = [name for name in ve.FORMATS if ve.encoder_available(name)]
        raise VanishError(SAVE, "format", f"{fmt} needs the {ve.FORMATS[fmt].codec} encoder, which "
                          "this PyAV build does not have.", f"choose one of {', '.join(usable)}.")
    if images is None and mask is None:
        raise VanishError(SAVE, "images", "is not connected, and neither is 'mask'.",
                          "connect the frames to save (or a mask to save it as a matte).")
    if images is None:
        matte = check_mask(mask, SAVE, "mask")
        _check_size(fmt, matte.shape[2], matte.shape[1])
        return vf.TensorFrames(matte.unsqueeze(-1).expand(-1, -1, -1, 3), None)  # [T, H, W, 3] view
    frames = check_image(images, SAVE, "images")
    _check_size(fmt, frames.shape[2], frames.shape[1])
    if mask is None:
        return vf.TensorFrames(frames, None)
    if ve.FORMATS[fmt].alpha_pix_fmt is None:
        raise VanishError(SAVE, "format", f"{fmt} cannot store the mask as alpha.",
                          f"choose {', '.join(ve.ALPHA_FORMATS)} for a transparent video, or "
                          "disconnect 'mask'.")
    alpha = match_mask_to_frames(check_mask(mask, SAVE, "mask"), frames, SAVE, "mask", "images")
    return vf.TensorFrames(frames, alpha)


def _check_size(fmt: str, width: int, height: int) -> None:
    problem = ve.frame_size_problem(fmt, width, height)
    if problem:
        raise VanishError(SAVE, "format", problem + ".",
                          "choose h264-mp4 (or another format) for frames this small, or upscale "
                          f"them to at least {ve.H265_MIN_SIZE[0]}x{ve.H265_MIN_SIZE[1]}.")


def preview_entries(target: Path, subfolder: str, fmt: str) -> dict:
    """The UI value core's SaveVideo returns: saved files, animated for videos."""
    if fmt != "png-sequence":
        return {"images": [{"filename": target.name, "subfolder": subfolder, "type": "output"}],
                "animated": (True,)}
    inner = f"{subfolder}/{target.name}" if subfolder else target.name
    return {"images": [{"filename": p.name, "subfolder": inner, "type": "output"}
                       for p in sorted(target.glob("*.png"))], "animated": (False,)}


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "VanishLoadVideoFrames": VanishLoadVideoFrames,
    "VanishSaveVideo": VanishSaveVideo,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "VanishLoadVideoFrames": LOAD,
    "VanishSaveVideo": SAVE,
}
