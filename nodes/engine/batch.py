"""A batch of clips: one after the other in-process, or one Ray task per clip.

On Ray each clip's task runs :func:`~.run.run_removal` inside a worker, which joins the same Ray
and submits that clip's SAM 2 tracking (one sequential task) and inpainting segments as tasks of
their own; the clip task itself holds no GPU, so it never blocks its children's GPUs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Cancelled, EngineError
from .settings import RemovalResult, RemovalSettings

logger = logging.getLogger(__name__)


@dataclass
class BatchJob:
    """One clip of a batch: what :func:`~.run.run_removal` takes besides the shared models.

    ``source``/``masks`` are paths (or arrays); give exactly one of ``masks`` and ``prompts``.
    """

    source: Any
    output: Path
    masks: Any = None
    prompts: Any = None
    settings: RemovalSettings = field(default_factory=RemovalSettings)


def _clip_task(job: BatchJob, sam2, inpaint_models, device: str, work_dir, ray_address: str | None,
               overwrite: bool) -> RemovalResult:
    from .run import run_removal

    return run_removal(job.source, job.output, job.settings, masks=job.masks, prompts=job.prompts, sam2=sam2,
                       inpaint_models=inpaint_models, device=device, work_dir=work_dir, ray_address=ray_address,
                       overwrite=overwrite)


def run_batch(jobs: list[BatchJob], *, sam2=None, inpaint_models=None, device: str = "cpu",
              work_dir: str | Path | None = None, ray_address: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              should_cancel: Callable[[], bool] | None = None,
              overwrite: bool = False) -> list[RemovalResult | EngineError]:
    """Run every job; a job's bad input is returned as its :class:`EngineError`, the others go on.

    ``progress(done, total)`` counts finished clips. Raises :class:`Cancelled` on cancel.
    """
    outputs = [Path(job.output) for job in jobs]
    if len(set(outputs)) != len(outputs):
        raise EngineError("jobs", "give two clips the same output name.", "give every clip its own output.")
    results: list[RemovalResult | EngineError] = []
    if ray_address is None:
        for index, job in enumerate(jobs):
            if should_cancel is not None and should_cancel():
                raise Cancelled("the batch was cancelled")
            try:
                from .run import run_removal

                results.append(run_removal(job.source, job.output, job.settings, masks=job.masks,
                                           prompts=job.prompts, sam2=sam2, inpaint_models=inpaint_models,
                                           device=device, work_dir=work_dir, should_cancel=should_cancel,
                                           overwrite=overwrite))
            except EngineError as exc:
                results.append(exc)
            if progress is not None:
                progress(index + 1, len(jobs))
        return results
    from .ray_backend import POLL_SECONDS, engine_error, ensure_ray, task_options

    ray, started = ensure_ray(ray_address)
    try:
        remote = ray.remote(_clip_task).options(**task_options(ray, gpus=0))
        sam2_ref = ray.put(sam2) if sam2 is not None else None
        models_ref = ray.put(inpaint_models) if inpaint_models is not None else None
        refs = [remote.remote(job, sam2_ref, models_ref, str(device), str(work_dir) if work_dir else None,
                              "local", overwrite) for job in jobs]
        done = 0
        for ref in refs:
            while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
                if should_cancel is not None and should_cancel():
                    for other in refs:
                        ray.cancel(other, force=True, recursive=True)
                    raise Cancelled("the batch was cancelled")
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                cause = engine_error(exc)
                if isinstance(cause, EngineError):
                    results.append(cause)
                else:
                    raise cause from None
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    finally:
        if started:
            ray.shutdown()
    return results
