"""Inpainting segments as Ray tasks (optional: ``pip install 'vanish[ray]'``).

A segment task is :func:`~.segments.run_segment`, a pure function of its inputs, so a task that
Ray retries after its worker died returns the same bytes. The driver stores each result in the
work folder (resume works the same as in-process) and the encoder stitches them with the local
code. Ray is started through its Python API only (``ray.init``): ``"local"`` starts (or joins) a
local instance, any other address joins that cluster; an already initialised Ray is reused.

Workers import the pack under the driver's package name: the driver puts a folder holding a link
named after its package onto the tasks' ``PYTHONPATH``, so the pack must be at the same path on
every node (one machine, or a shared file system).
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import Cancelled, EngineError
from .segments import Segment, SegmentOutput, load_segment, run_segment, save_segment

logger = logging.getLogger(__name__)

#: How often Ray re-runs a task whose worker died (killed, out of memory).
MAX_RETRIES = 3
#: Seconds between cancel polls while waiting for a task.
POLL_SECONDS = 0.2
#: A test hook: when this variable names a file that does not exist yet, the first segment task
#: to see it creates the file and kills its own worker (SIGKILL), so Ray's retry is exercised.
KILL_ONCE_ENV = "VANISH_TEST_KILL_WORKER_ONCE"

_PACKAGE = __name__.split(".")[0]
_PACK_ROOT = Path(__file__).resolve().parents[2]


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise EngineError("ray_address", "is set but Ray is not installed.",
                          "pip install 'ray' (or the pack's [ray] extra), or run without ray_address.") from exc
    return ray


def _worker_path() -> str:
    """A folder where ``import <package>`` finds this pack (a link named after the package)."""
    tag = hashlib.sha256(str(_PACK_ROOT).encode()).hexdigest()[:16]  # one folder per checkout
    folder = Path(tempfile.gettempdir()) / f"vanish-ray-path-{os.getuid()}" / tag
    link = folder / _PACKAGE
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(_PACK_ROOT, target_is_directory=True)
        except FileExistsError:
            pass
    return str(folder)


def ray_address_from_env() -> str | None:
    """``RAY_ADDRESS`` when set (for front doors that honour it), else None (in-process)."""
    return os.environ.get("RAY_ADDRESS") or None


def ensure_ray(address: str):
    """Ray, initialised (``"local"``: a local instance; else join ``address``). Returns (ray, started)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=None if address in ("local", "") else address, log_to_driver=False,
                 include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EngineError("ray_address", f"could not connect to Ray at {address!r}: {exc}.",
                          "start the cluster (ray start --head) and give its address, or use 'local'.") from exc
    return ray, True


def _task(source, masks, settings, segment: Segment, models: Any, device_type: str) -> SegmentOutput:
    marker = os.environ.get(KILL_ONCE_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), 9)
    device = torch.device("cuda" if device_type == "cuda" and torch.cuda.is_available() else "cpu")
    if models is not None and getattr(models, "device", None) is not None and torch.device(models.device) != device:
        for name in ("raft", "flow_completion", "generator"):
            getattr(models, name).to(device)
        models.device = device
    try:
        return run_segment(source, masks, settings, segment, models, device)
    finally:
        source.close()


def task_options(ray, gpus: int) -> dict:
    """Options of every engine task: retries, resources, and the environment to import the pack."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in (_worker_path(), os.environ.get("PYTHONPATH", "")) if p)}
    env.update({k: v for k, v in os.environ.items() if k.startswith("VANISH_")})
    return {"num_gpus": gpus, "num_cpus": 1, "max_retries": MAX_RETRIES, "retry_exceptions": False,
            "runtime_env": {"env_vars": env}}


def gpus_per_task(ray, device: torch.device) -> int:
    """1 when the job runs its networks on CUDA and the cluster has GPUs (one per task), else 0.

    A CPU job stays on CPUs even on a GPU cluster, so its output equals the local CPU run's.
    """
    return 1 if device.type == "cuda" and ray.cluster_resources().get("GPU", 0) > 0 else 0


def engine_error(exc) -> BaseException:
    """The EngineError or Cancelled a task raised, as the plain exception (else the Ray error)."""
    cause = exc.as_instanceof_cause()
    if isinstance(cause, EngineError):
        return EngineError(cause.input_name, cause.problem, cause.fix)
    if isinstance(cause, Cancelled):
        return Cancelled(str(cause))
    return exc


def wait_for(ray, ref, job) -> Any:
    """``ray.get(ref)``, polling the job's cancel every :data:`POLL_SECONDS`."""
    while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
        job.check()
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise engine_error(exc) from None


def _track_task(source, prompts, sam2, folder: str):
    from .tracking import track_to_store

    try:
        return track_to_store(source, prompts, sam2, Path(folder), None, None)
    finally:
        source.close()


def track_on_ray(address: str, source, prompts, sam2, folder: Path, job):
    """SAM 2 tracking of one clip as ONE Ray task (it is sequential); returns the mask store."""
    ray, started = ensure_ray(address)
    try:
        device = torch.device(getattr(sam2, "device", "cpu"))
        remote = ray.remote(_track_task).options(**task_options(ray, gpus_per_task(ray, device)))
        return wait_for(ray, remote.remote(source, prompts, sam2, str(folder)), job)
    finally:
        if started:
            ray.shutdown()


class RaySegments:
    """Submit every missing segment as a Ray task; hand results to the encoder in order."""

    def __init__(self, address: str, source, masks, settings, models, device: torch.device, folder: Path,
                 job) -> None:
        self.ray, self.started = ensure_ray(address)
        self.source, self.masks, self.settings = source, masks, settings
        self.models, self.device, self.folder, self.job = models, device, folder, job
        self.refs: dict[int, Any] = {}
        self.keep: Callable[[SegmentOutput, bool], SegmentOutput] | None = None
        self.reused: dict[int, SegmentOutput] = {}

    def _options(self) -> dict:
        gpus = gpus_per_task(self.ray, self.device) if self.settings.inpaint.backend == "propainter" else 0
        return task_options(self.ray, gpus)

    def submit(self, plan: list[Segment], keep: Callable[[SegmentOutput, bool], SegmentOutput]) -> None:
        self.keep = keep
        remote = self.ray.remote(_task).options(**self._options())
        source_ref = self.ray.put(self.source)
        masks_ref = self.ray.put(self.masks)
        models_ref = self.ray.put(self.models) if self.models is not None else None
        for segment in plan:
            found = load_segment(self.folder, segment)
            if found is not None:
                self.reused[segment.index] = found
                continue
            device_type = "cuda" if self.device.type == "cuda" else "cpu"
            self.refs[segment.index] = remote.remote(source_ref, masks_ref, self.settings, segment, models_ref,
                                                     device_type)

    def get(self, segment: Segment) -> SegmentOutput:
        assert self.keep is not None
        if segment.index in self.reused:
            return self.keep(self.reused.pop(segment.index), False)
        out = wait_for(self.ray, self.refs.pop(segment.index), self.job)
        try:
            save_segment(self.folder, out)
        except OSError as exc:
            raise EngineError("work_dir", f"could not store a finished segment in {self.folder}: "
                              f"{exc.strerror or exc}.", "free some disk space or give another work_dir.") from exc
        return self.keep(out, True)

    def close(self) -> None:
        for ref in self.refs.values():
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a finished or lost task cannot be cancelled
                pass
        self.refs.clear()
        if self.started:
            self.ray.shutdown()
