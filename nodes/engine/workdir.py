"""The work folder of a job: named by a hash of everything that decides its pixels.

Key = source identity (path, size, mtime, a hash of the first and last MiB; or the frames'
hash) + masks identity or prompts + mask and inpaint settings + model weights + engine version.
The output format is not part of it: finished segments are reused whatever the output is
encoded to. Files inside are written atomically (temporary name, then rename), so a job killed
at any moment leaves only complete files behind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import EngineError
from .settings import RemovalSettings

#: Bump when a change makes stored segments differ from what this code computes.
ENGINE_VERSION = 1


def module_identity(module: Any) -> str:
    """A hash of a model's weights (state dicts of its networks), or '' for None."""
    if module is None:
        return ""
    path = getattr(module, "path", None)
    if path is not None and Path(path).is_file():
        stat = Path(path).stat()
        return f"file:{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256()
    nets = [getattr(module, name) for name in ("raft", "flow_completion", "generator", "predictor")
            if isinstance(getattr(module, name, None), torch.nn.Module)]
    if isinstance(module, torch.nn.Module):
        nets = [module]
    for net in nets:
        for name, tensor in net.state_dict().items():
            data = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
            digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return f"weights:{digest.hexdigest()}:{getattr(module, 'dtype', '')}"


def job_key(source_id: str, masks_id: str, settings: RemovalSettings, models_id: str, sam2_id: str,
            device: torch.device) -> str:
    parts = {
        "engine": ENGINE_VERSION,
        "source": source_id,
        "masks": masks_id,
        "inpaint": dataclasses.asdict(settings.inpaint),
        "mask": dataclasses.asdict(settings.mask),
        "window": settings.window,
        "context": settings.context,
        "models": models_id,
        "sam2": sam2_id,
        # the networks' arithmetic differs between device types (flow_fill always runs on the CPU)
        "device": device.type if settings.inpaint.backend == "propainter" else "cpu",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def job_folder(root: Path, key: str, description: dict) -> Path:
    """``root/<key>`` created (with ``root``) and described in ``job.json``.

    One run per job folder at a time: a new run removes the half-written files a killed one left.
    """
    folder = Path(root).expanduser() / key[:24]
    try:
        (folder / "segments").mkdir(parents=True, exist_ok=True)
        for stale in (folder / "segments").glob(".tmp-*"):  # a segment being written when a run was killed
            stale.unlink(missing_ok=True)
        info = folder / "job.json"
        if not info.exists():
            write_atomic(info, json.dumps(description, indent=1, default=str).encode())
    except OSError as exc:
        raise EngineError("work_dir", f"cannot create the work folder {folder}: {exc.strerror or exc}.",
                          "give a writable work_dir (it holds finished segments for resume).") from exc
    return folder


def write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, path)
