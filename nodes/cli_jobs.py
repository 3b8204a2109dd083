"""Turn ``vanish remove`` arguments into checked jobs, before anything is written.

ComfyUI-free. :func:`plan_jobs` expands the clips (files, image folders, a folder of videos = a
batch, or a ``--jobs`` JSON list), opens each source (header only), checks the prompts against the
clip's frame count and size, opens the masks, and works out each output and work folder. Every
problem is a :class:`~.cli_args.UsageError` naming the argument; the caller exits with code 2 and
nothing has been created.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli_args import FORMAT_BY_EXTENSION, UsageError, box, point
from .ops import video_decode as vd
from .ops import video_encode as ve
from .ops.sam2_prompts import FramePrompts, ObjectPrompts, PromptError, PromptSet

#: Engine input names -> the argument the user gave them with.
ENGINE_ARGUMENTS = {"source": "CLIP", "clip": "CLIP", "masks": "--mask", "mask": "--mask",
                    "prompts": "--click/--box/--prompts", "output": "--out", "work_dir": "--work-dir",
                    "ray_address": "--ray", "sam2": "--sam2", "inpaint_models": "--models",
                    "device": "--device"}
JOB_KEYS = {"clip", "out", "mask", "prompts", "click", "exclude", "box", "work_dir"}


@dataclass
class Job:
    """One clip to process: its opened source, what to remove, where the result goes."""

    clip: Path
    out: Path
    source: Any                       # engine FrameSource
    prompts: PromptSet | None = None  # in the clip's pixels
    mask: Any = None                  # engine MaskSource
    work_dir: Path | None = None
    default_work: bool = True         # the work folder is ours to name (beside the output)
    label: str = field(default="")


def usage_from_engine(error, fallback: str) -> UsageError:
    """An engine error about an input, re-labelled with the command-line argument."""
    argument = ENGINE_ARGUMENTS.get(getattr(error, "input_name", None) or "", fallback)
    problem = getattr(error, "problem", None) or str(error)
    return UsageError(argument, problem, getattr(error, "fix", None))


# --------------------------------------------------------------------------- outputs
def output_format(fmt: str | None, out: Path | None) -> str:
    """The format from --format, else from --out's extension, else h264-mp4 (checked both ways)."""
    extension = out.suffix.lower().lstrip(".") if out is not None and not out.is_dir() else ""
    if fmt is None:
        if not extension:
            fmt = "h264-mp4"
        elif extension in FORMAT_BY_EXTENSION:
            fmt = FORMAT_BY_EXTENSION[extension]
        else:
            raise UsageError("--out", f"ends in .{extension}, which Vanish does not write.",
                             f"end it in {', '.join('.' + e for e in FORMAT_BY_EXTENSION)}, or give --format.")
    elif extension and fmt != "png-sequence" and extension != ve.FORMATS[fmt].extension:
        raise UsageError("--out", f"ends in .{extension} but --format {fmt} writes "
                         f".{ve.FORMATS[fmt].extension} files.",
                         f"name the output *.{ve.FORMATS[fmt].extension}, or drop --format.")
    if not ve.encoder_available(fmt):  # type: ignore[arg-type]
        usable = [name for name in ve.FORMATS if ve.encoder_available(name)]  # type: ignore[arg-type]
        raise UsageError("--format", f"{fmt} needs the {ve.FORMATS[fmt].codec} encoder, which this "
                         "PyAV build lacks.", f"choose one of {', '.join(usable)}.")
    return fmt


def _writable_folder(folder: Path, argument: str) -> None:
    if not folder.is_dir():
        raise UsageError(argument, f"would write into {folder}, which does not exist.",
                         f"create it first (mkdir -p {folder}) or choose an existing folder; "
                         "vanish never creates folders for you there.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(argument, f"would write into {folder}, which is not writable.",
                         "choose a folder you can write to.")


def _free_name(folder: Path, stem: str, fmt: str, taken: set[Path]) -> Path:
    extension = "" if fmt == "png-sequence" else "." + ve.FORMATS[fmt].extension
    for counter in range(1, 1000):
        name = f"{stem}_removed{'' if counter == 1 else f'_{counter}'}{extension}"
        candidate = folder / name
        if not candidate.exists() and candidate not in taken:
            return candidate
    raise UsageError("--out", f"{folder} already holds 999 results for {stem}.",
                     "give --out a new file name.")


def resolve_output(clip: Path, out: Path | None, fmt: str, batch: bool, taken: set[Path]) -> Path:
    """Where one clip's result goes: never an existing file, never in a folder we would create."""
    stem = clip.stem if clip.is_file() else clip.name
    if out is None:
        folder = clip.parent if clip.is_file() else clip.resolve().parent
        _writable_folder(folder, "CLIP")
        return _free_name(folder, stem, fmt, taken)
    out = out.expanduser()
    if out.is_dir():
        _writable_folder(out, "--out")
        return _free_name(out, stem, fmt, taken)
    if batch:
        raise UsageError("--out", f"is {out}, but several clips are processed.",
                         "give an existing folder for the results (mkdir it first).")
    if out.exists():
        raise UsageError("--out", f"{out} already exists; Vanish never overwrites a file.",
                         "choose a new name, or move the old file away.")
    _writable_folder(out.parent if str(out.parent) else Path("."), "--out")
    if out.resolve() in taken:
        raise UsageError("--out", f"{out} is the output of two jobs.", "give each job its own 'out'.")
    return out


def work_folder(out: Path, work_dir: Path | None, batch: bool) -> tuple[Path, bool]:
    """``(folder, ours)``: --work-dir (per clip below it in a batch), else hidden beside the output."""
    if work_dir is None:
        return out.parent / f".{out.name}.vanish-work", True
    work_dir = work_dir.expanduser()
    parent = work_dir if batch else work_dir.parent
    if not (parent if str(parent) else Path(".")).is_dir():
        raise UsageError("--work-dir", f"is in {parent}, which does not exist.",
                         f"create {parent} first, or give a folder inside an existing one.")
    return (work_dir / out.name if batch else work_dir), False


# --------------------------------------------------------------------------- prompts
def points_to_prompts(clicks: list, excludes: list, boxes: list) -> PromptSet | None:
    """--click/--exclude/--box as one object (id 1); None when none was given."""
    if not (clicks or excludes or boxes):
        return None
    obj = ObjectPrompts(1, {}, "object")
    for x, y, frame in clicks:
        obj.frames.setdefault(frame or 0, FramePrompts()).positive.append((x, y))
    for x, y, frame in excludes:
        obj.frames.setdefault(frame or 0, FramePrompts()).negative.append((x, y))
    for corners, frame in boxes:
        obj.frames.setdefault(frame or 0, FramePrompts()).boxes.append(corners)
    return PromptSet([obj])


def read_prompts_file(path: Path) -> PromptSet:
    if not path.is_file():
        raise UsageError("--prompts", f"{path} does not exist or is not a file.",
                         "give the JSON file saved from the SAM 2 Video Prompt editor.")
    try:
        return PromptSet.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("--prompts", f"{path} cannot be read ({exc}).", "give a UTF-8 JSON file.") from None
    except PromptError as exc:
        raise UsageError("--prompts", f"{path}: {exc.problem}", exc.fix) from None


def fit_prompts(prompts: PromptSet, source, argument: str) -> PromptSet:
    """Check the prompts against the clip (frames, size) and scale them to its pixels."""
    size = (int(source.width), int(source.height))
    try:
        prompts.validate(int(source.num_frames), size)
        return prompts.scaled_to(*size)
    except PromptError as exc:
        raise UsageError(argument, f"{exc.problem.rstrip('.')} (the clip: {size[0]}x{size[1]} pixels, "
                         f"{source.num_frames} frames).", exc.fix) from None


# --------------------------------------------------------------------------- clips
def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower().lstrip(".") in vd.VIDEO_EXTENSIONS


def expand_clips(clips: list[Path]) -> list[Path]:
    """Files and image folders as given; a folder holding video files becomes those files."""
    found: list[Path] = []
    for clip in clips:
        clip = clip.expanduser()
        if not clip.exists():
            raise UsageError("CLIP", f"{clip} does not exist.", "check the path (see 'ls').")
        if clip.is_dir():
            videos = sorted(p for p in clip.iterdir() if _is_video(p))
            if videos:
                found += videos
                continue
            if not vd.list_image_files(clip):
                raise UsageError("CLIP", f"{clip} holds no video files and no images.",
                                 f"give a video file, a folder of numbered images, or a folder of "
                                 f"videos ({', '.join(vd.VIDEO_EXTENSIONS)}).")
        found.append(clip)
    return found


def batch_mask(mask: Path | None, clip: Path, batch: bool) -> Path | None:
    """The mask for ``clip``: --mask itself, or in a batch ``<mask folder>/<clip name>.*``."""
    if mask is None or not batch or not mask.is_dir() or vd.list_image_files(mask) and not any(
            p.is_dir() or _is_video(p) for p in mask.iterdir()):
        return mask
    stem = clip.stem if clip.is_file() else clip.name
    matches = sorted(p for p in mask.iterdir() if (p.stem if p.is_file() else p.name) == stem)
    if not matches:
        raise UsageError("--mask", f"{mask} has no mask for {clip.name} (looked for {stem}.*).",
                         f"add {mask / stem}.mp4 (or .png, or a folder {stem}/), or give one mask "
                         "file for every clip.")
    return matches[0]


def _open_source(engine, clip: Path, argument: str = "CLIP"):
    try:
        return engine.open_source(clip)
    except engine.EngineError as exc:
        raise usage_from_engine(exc, argument) from None
    except (OSError, ValueError) as exc:
        raise UsageError(argument, f"{clip} cannot be read as a video: {exc}.",
                         "give a video file (mp4, mov, mkv, webm, ...) or a folder of numbered "
                         "images; re-export the file if it is damaged.") from None


def _open_mask(engine, mask: Path, source):
    if not mask.exists():
        raise UsageError("--mask", f"{mask} does not exist.", "give a mask video, image folder or image.")
    try:
        return engine.open_mask_source(mask, like=source)
    except engine.EngineError as exc:
        raise usage_from_engine(exc, "--mask") from None
    except (OSError, ValueError) as exc:
        raise UsageError("--mask", f"{mask} cannot be read: {exc}.",
                         "give a mask video, a folder of mask images, or one image (white = remove).") from None


# --------------------------------------------------------------------------- jobs
def _job_entries(args) -> list[dict]:
    """One dict per job: from --jobs (paths relative to the file) or from CLIP arguments."""
    if args.jobs is None:
        if not args.clips:
            raise UsageError("CLIP", "is missing.", "give a clip (or a folder of clips, or --jobs FILE); "
                             "see 'vanish remove --help'.")
        clips = expand_clips(args.clips)
        return [{"clip": clip} for clip in clips]
    if args.clips:
        raise UsageError("--jobs", "cannot be combined with CLIP arguments.", "give one or the other.")
    try:
        entries = json.loads(args.jobs.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError("--jobs", f"{args.jobs} cannot be read as JSON ({exc}).",
                         'write a list such as [{"clip": "a.mp4", "mask": "a_mask.png"}].') from None
    if not isinstance(entries, list) or not entries:
        raise UsageError("--jobs", "must hold a non-empty JSON list of jobs.",
                         'write [{"clip": "a.mp4", "mask": "a_mask.png"}, ...].')
    base, jobs = args.jobs.parent, []
    for number, entry in enumerate(entries, start=1):
        where = f"--jobs (job {number})"
        if not isinstance(entry, dict) or "clip" not in entry or set(entry) - JOB_KEYS:
            raise UsageError(where, f"is {json.dumps(entry)[:120]}.",
                             f"each job is an object with 'clip' and any of {sorted(JOB_KEYS - {'clip'})}.")
        job = dict(entry)
        for key in ("clip", "out", "mask", "prompts", "work_dir"):
            if key in job:
                job[key] = (base / str(job[key])).expanduser()
        try:
            job["click"] = [point(str(v)) for v in job.get("click", [])]
            job["exclude"] = [point(str(v)) for v in job.get("exclude", [])]
            job["box"] = [box(str(v)) for v in job.get("box", [])]
        except Exception as exc:  # argparse.ArgumentTypeError: the text already holds the fix
            raise UsageError(where, str(exc)) from None
        if not job["clip"].exists():
            raise UsageError(where, f"clip {job['clip']} does not exist.", "check the path in the jobs file.")
        jobs.append(job)
    return jobs


def plan_jobs(args, engine) -> tuple[list[Job], str]:
    """Every job checked and resolved (sources opened, outputs named), and the output format.

    Nothing is written.
    """
    entries = _job_entries(args)
    batch = len(entries) > 1
    fmt = output_format(args.format, args.out if not batch else None)
    taken: set[Path] = set()
    jobs = []
    for entry in entries:
        clip: Path = entry["clip"]
        source = _open_source(engine, clip)
        prompts = points_to_prompts(entry.get("click", args.click), entry.get("exclude", args.exclude),
                                    entry.get("box", args.box))
        argument = "--click/--box"
        prompts_file = entry.get("prompts", args.prompts if prompts is None else None)
        if prompts_file is not None:
            if prompts is not None:
                raise UsageError("--prompts", "cannot be combined with --click/--box.", "give one or the other.")
            prompts, argument = read_prompts_file(prompts_file), "--prompts"
        mask_path = entry.get("mask", batch_mask(args.mask, clip, batch))
        if prompts is None and mask_path is None:
            raise UsageError(None, f"nothing to remove in {clip.name}.",
                             "click the object (--click X,Y with --sam2 CKPT), draw a box (--box), "
                             "give --prompts JSON, or give a --mask.")
        if prompts is not None and mask_path is not None:
            raise UsageError("--mask", "cannot be combined with clicks, boxes or prompts.",
                             "use either SAM 2 prompts or a mask.")
        out = resolve_output(clip, entry.get("out", args.out), fmt, batch and "out" not in entry, taken)
        taken.add(out.resolve())
        work, ours = work_folder(out, entry.get("work_dir", args.work_dir), batch and "work_dir" not in entry)
        jobs.append(Job(clip, out, source,
                        prompts=fit_prompts(prompts, source, argument) if prompts is not None else None,
                        mask=_open_mask(engine, mask_path, source) if mask_path is not None else None,
                        work_dir=work, default_work=ours, label=clip.name))
    return jobs, fmt
