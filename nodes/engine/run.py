"""``run_removal``: one clip from source to output file, streaming, resumable, optionally on Ray.

Stages: (1) masks: a mask file read per window, or SAM 2 tracking into a bit-packed store in
the work folder; (2) inpainting segment by segment (:mod:`.segments`), each stored in the work
folder when done; (3) encoding: the encoder pulls frames in order, each segment's pixels are
pasted into the re-decoded originals (:mod:`.output`). In-process, a segment is computed when the
encoder reaches it, so encoding is incremental; on Ray every missing segment is submitted first
and the encoder waits for each in order. Both paths stitch with the same code.
"""
from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import Cancelled, EngineError
from .masks import MaskSource, open_mask_source
from .output import (StitchedFrames, check_output, encode, partial_path, preview_of, publish,
                     remove_partial)
from .segments import Segment, SegmentOutput, load_segment, run_segment, save_segment, segment_plan
from .settings import RemovalResult, RemovalSettings
from .sources import FrameSource, open_source
from .workdir import job_folder, job_key, module_identity

logger = logging.getLogger(__name__)


class _Job:
    """Progress over the whole job and the cancel poll."""

    def __init__(self, progress: Callable[[int, int], None] | None, should_cancel: Callable[[], bool] | None,
                 track_units: int, frames: int) -> None:
        self._progress, self._should_cancel = progress, should_cancel
        self.total = track_units + 2 * frames
        self.track_units, self.frames = track_units, frames
        self.done = 0.0
        self._last = -1

    def cancelled(self) -> bool:
        return self._should_cancel is not None and bool(self._should_cancel())

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled("the removal was cancelled")

    def report(self, done: float) -> None:
        self.done = max(self.done, done)
        whole = min(self.total, int(self.done))
        if self._progress is not None and whole != self._last:
            self._last = whole
            self._progress(whole, self.total)

    def tracking(self, done: int, total: int) -> None:
        self.report(self.track_units * done / max(total, 1))

    def inpainting(self, frames_done: float) -> None:
        self.report(self.track_units + frames_done)

    def encoding(self, index: int) -> None:
        self.check()
        self.report(self.track_units + self.frames + index + 1)


def _masks_identity(masks: MaskSource | None, prompts) -> str:
    if masks is not None:
        return masks.identity()
    return "prompts:" + prompts.to_json()


def run_removal(source, output, settings: RemovalSettings | None = None, *, prompts=None, masks=None,
                sam2=None, inpaint_models: Any = None, device: str | torch.device = "cpu",
                work_dir: str | Path | None = None, ray_address: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None, preview_frames: int = 8,
                overwrite: bool = False, keep_work: bool = False,
                mask_threshold: float | None = None,
                if_taken: Callable[[Path], Path] | None = None) -> RemovalResult:
    """Remove the masked (or prompted) object from ``source`` and write ``output``.

    See the package docstring for the arguments. Raises :class:`EngineError` for bad input and
    :class:`Cancelled` on cancel (partial output removed, work folder kept).
    """
    settings = settings or RemovalSettings()
    device = torch.device(device)
    output = check_output(Path(output), settings.output, overwrite)
    clip = open_source(source)
    if (prompts is None) == (masks is None):
        raise EngineError("masks", "and 'prompts' are both given or both missing.",
                          "give either a mask (video, image, folder, array) or SAM 2 prompts.")
    mask_source: MaskSource | None = None
    if masks is not None:
        threshold = settings.mask.threshold if mask_threshold is None else mask_threshold
        mask_source = open_mask_source(masks, clip, threshold)
    else:
        from .tracking import check_prompts

        prompts = check_prompts(prompts, clip)
        if sam2 is None:
            raise EngineError("sam2", "is missing; prompts need a SAM 2 model.",
                              "load SAM 2 (sam2_loader.load_sam2) or give a mask instead of prompts.")
    if settings.inpaint.backend == "propainter" and inpaint_models is None:
        raise EngineError("inpaint_models", "is missing; the ProPainter backend needs its three networks.",
                          "load them with propainter_core.load_models, or use the flow_fill backend.")
    key = job_key(clip.identity(), _masks_identity(mask_source, prompts), settings,
                  module_identity(inpaint_models), module_identity(sam2), device)
    temporary_root = None
    if work_dir is None:
        temporary_root = Path(tempfile.mkdtemp(prefix="vanish-work-"))
    partial = partial_path(output, key)
    ray_started = False
    try:
        folder = job_folder(Path(work_dir) if work_dir is not None else temporary_root, key,
                            {"source": getattr(clip, "description", ""), "output": str(output),
                             "created": time.strftime("%Y-%m-%d %H:%M:%S")})
        remove_partial(partial)  # left over by this same job when it was killed
        if ray_address is not None:  # one Ray for the job's tasks (tracking, segments)
            from .ray_backend import ensure_ray

            ray_module, ray_started = ensure_ray(ray_address)
        result = _run(clip, output, partial, settings, folder, mask_source, prompts, sam2, inpaint_models,
                      device, ray_address, progress, should_cancel, preview_frames, overwrite, if_taken)
    except BaseException:
        remove_partial(partial)
        if temporary_root is not None:
            shutil.rmtree(temporary_root, ignore_errors=True)
        raise
    finally:
        clip.close()
        if ray_started:
            ray_module.shutdown()
    if temporary_root is not None:
        shutil.rmtree(temporary_root, ignore_errors=True)
    elif not keep_work:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        result.work_dir = folder
    return result


def _run(clip: FrameSource, output: Path, partial: Path, settings: RemovalSettings, folder: Path,
         mask_source: MaskSource | None, prompts, sam2, models, device: torch.device,
         ray_address: str | None, progress, should_cancel, preview_frames: int,
         overwrite: bool, if_taken: Callable[[Path], Path] | None = None) -> RemovalResult:
    frames = clip.num_frames
    job = _Job(progress, should_cancel, 2 * frames if prompts is not None else 0, frames)
    job.report(0)
    if mask_source is None:
        from .tracking import track_to_store

        if ray_address is not None:
            from .ray_backend import track_on_ray

            mask_source = track_on_ray(ray_address, clip, prompts, sam2, folder / "masks", job)
        else:
            mask_source = track_to_store(clip, prompts, sam2, folder / "masks", job.tracking, job.cancelled)
        job.check()
        job.report(job.track_units)
    plan = segment_plan(frames, settings)
    stored = folder / "segments"
    counts = {"run": 0, "reused": 0}
    notes: list[str] = []
    finished = {"frames": 0}

    def keep(out: SegmentOutput, computed: bool) -> SegmentOutput:
        counts["run" if computed else "reused"] += 1
        finished["frames"] += out.segment.core_stop - out.segment.core_start
        job.inpainting(finished["frames"])
        notes.extend(n for n in out.notes if n not in notes)
        return out

    if ray_address is not None:
        from .ray_backend import RaySegments

        executor = RaySegments(ray_address, clip, mask_source, settings, models, device, stored, job)
        get_output = executor.get
    else:
        executor = None

        def get_output(segment: Segment) -> SegmentOutput:
            job.check()
            found = load_segment(stored, segment)
            if found is not None:
                return keep(found, False)
            core = segment.core_stop - segment.core_start
            base = finished["frames"]

            def inner(done: int, total: int) -> None:
                job.inpainting(base + core * done / max(total, 1))

            out = run_segment(clip, mask_source, settings, segment, models, device, inner, job.cancelled)
            _save(stored, out)
            return keep(out, True)

    previews: dict[int, np.ndarray] = {}
    wanted = set(np.linspace(0, frames - 1, min(preview_frames, frames)).round().astype(int).tolist()) \
        if preview_frames > 0 else set()
    # the encoder's reads get their own decoder (a copy opens the file again), so neither the
    # segments' reads nor the encoder's keep seeking back over each other's frames
    stitched = StitchedFrames(copy.copy(clip), plan, get_output)

    def on_frame(index: int) -> None:
        if index in wanted:  # downscaled now: a view would keep its whole window of frames alive
            previews[index] = preview_of([stitched[index]])[0]
        job.encoding(index)

    try:
        if executor is not None:
            executor.submit(plan, keep)
        encode(stitched, partial, clip.fps, settings.output, clip.audio_path if clip.has_audio else None,
               on_frame, job.check)
    finally:
        stitched.source.close()
        if executor is not None:
            executor.close()
    try:
        output = publish(partial, output, overwrite, if_taken)
    except OSError as exc:
        raise EngineError("output", f"could not be given its name {output}: {exc}.",
                          "check the folder and run again (finished segments are reused).") from exc
    job.report(job.total)
    return RemovalResult(output, frames, counts["run"], counts["reused"],
                         np.stack([previews[i] for i in sorted(previews)]) if previews
                         else preview_of([]), None, notes)


def _save(folder: Path, out: SegmentOutput) -> None:
    try:
        save_segment(folder, out)
    except OSError as exc:
        raise EngineError("work_dir", f"could not store a finished segment in {folder}: "
                          f"{exc.strerror or exc}.", "free some disk space or give another work_dir; "
                          "segments already stored are reused on the next run.") from exc
