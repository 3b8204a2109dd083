"""``vanish remove --ray ADDRESS`` over several clips: each clip is one Ray task.

ComfyUI-free. A clip's task runs the whole engine for that clip on a worker (SAM 2 stays one
sequential pass per clip, inside its task); the clips of a batch run side by side, one per free
CPU (and one GPU each where the cluster has GPUs and the job uses a network). A single clip with
``--ray`` instead sends its inpainting segments as Ray tasks (the engine's own Ray path).

A task is a pure function of its inputs (the clip, what to remove, the settings, the models), so
a task that Ray retries after its worker died writes the same file. Ctrl-C cancels the running
tasks (a task's engine removes its partial output as it stops); work folders stay for resume.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .cli_jobs import Job, usage_from_engine

#: Seconds between polls of the running tasks (Ctrl-C is checked in between).
POLL_SECONDS = 0.2


def clip_task(job: Job, settings, sam2, networks, device_type: str) -> tuple[str, int, int]:
    """Runs on a Ray worker: the engine on one clip; ``(output, frames, segments reused)``."""
    import torch

    from . import engine

    device = torch.device("cuda" if device_type == "cuda" and torch.cuda.is_available() else "cpu")
    result = engine.run_removal(job.source, job.out, settings, prompts=job.prompts, masks=job.mask, sam2=sam2,
                                inpaint_models=networks, device=device, work_dir=job.work_dir)
    return str(result.output), result.frames, result.segments_reused


def _options(ray, uses_network: bool) -> dict:
    from .engine.ray_backend import MAX_RETRIES, _worker_path

    gpus = 1 if uses_network and ray.cluster_resources().get("GPU", 0) > 0 else 0
    return {"num_cpus": 1, "num_gpus": gpus, "max_retries": MAX_RETRIES, "retry_exceptions": False,
            "runtime_env": {"env_vars": {"PYTHONPATH": _worker_path()}}}


def run_batch(engine, jobs: list[Job], settings, models, device, address: str, interrupt) -> list[Any]:
    """Every job as a Ray task; returns per job ``None`` (done), ``True`` (bad input) or ``False``.

    Raises:
        engine.Cancelled: Ctrl-C (running tasks were cancelled and have stopped).
    """
    from .engine.ray_backend import ensure_ray

    ray, started = ensure_ray(address)
    sam2, networks = models
    try:
        remote = ray.remote(clip_task).options(**_options(ray, sam2 is not None or networks is not None))
        shared = [ray.put(value) if value is not None else None for value in (sam2, networks)]
        refs = {remote.remote(job, settings, *shared, device.type): index for index, job in enumerate(jobs)}
        print(f"vanish: {len(jobs)} clips as Ray tasks on {address}", file=sys.stderr)
        outcome: list[Any] = [False] * len(jobs)
        while refs:
            if interrupt():
                _cancel(ray, list(refs))
                raise engine.Cancelled("the batch was cancelled")
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                index = refs.pop(ref)
                outcome[index] = _collect(ray, engine, ref, jobs[index])
        return outcome
    finally:
        if started:
            ray.shutdown()


def _collect(ray, engine, ref, job: Job):
    try:
        output, frames, reused = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, engine.EngineError):
            print(usage_from_engine(cause, "CLIP"), file=sys.stderr)
            return True
        print(f"vanish remove: {job.clip} failed on Ray: {cause}\nThe work folder {job.work_dir} is kept: "
              "run the same command again to resume.", file=sys.stderr)
        return False
    except ray.exceptions.RayError as exc:  # a worker lost more times than Ray retries
        print(f"vanish remove: {job.clip} failed on Ray: {exc}", file=sys.stderr)
        return False
    print(f"{output}  ({frames} frames{f', {reused} segment(s) reused' if reused else ''})")
    return None


def _cancel(ray, refs: list) -> None:
    """Ask running tasks to stop (KeyboardInterrupt in the task: its engine cleans up), then wait."""
    for ref in refs:
        try:
            ray.cancel(ref, force=False)
        except Exception:  # noqa: BLE001 - a finished task cannot be cancelled
            pass
    for ref in refs:
        try:
            ray.get(ref, timeout=30)
        except Exception:  # noqa: BLE001 - cancelled tasks raise here by design
            pass
