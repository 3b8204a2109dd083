"""Frames of the last run for the prompt editor, when they do not come from Load Video Frames.

``SAM 2 Video Prompt`` calls :func:`write_run_frames` when its ``frames`` input is connected and
returns the references as its ``ui`` payload; the editor shows them through ``GET
/vanish/run_frame`` (``nodes/routes.py``). Frames are shrunk to :data:`MAX_SIDE` and stored as
JPEG in ``<temp>/vanish_editor/`` (ComfyUI empties its temp folder at start), one set per node,
replacing that node's previous set; a small JSON manifest per node lets an editor opened later
(after a page reload, while ComfyUI reuses the node's cached output) find them through
``GET /vanish/run_frames?node=<id>``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

RUN_FRAMES_SUBFOLDER = "vanish_editor"
MAX_SIDE = 768
"""Longest side of a stored frame: enough to click on, cheap to write for long clips."""
MAX_FRAMES = 5000
"""Frames stored per run; later frames are not shown (a cap on temp-folder use)."""
JPEG_QUALITY = 88
FINGERPRINT_SAMPLES = 65536


def _prefix(node_key: str) -> str:
    return "run_" + hashlib.sha1(node_key.encode("utf-8")).hexdigest()[:12]


def _shrunk_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def frames_fingerprint(images: torch.Tensor) -> str:
    """A cheap identity of an IMAGE batch: ComfyUI hands an unchanged upstream output over as the
    same tensor, so storage address, shape and a strided sample of values tell a re-run with new
    prompts (same frames: nothing to rewrite) from new frames."""
    flat = images.detach().reshape(-1)
    step = max(flat.numel() // FINGERPRINT_SAMPLES, 1)
    sample = flat[::step].to("cpu", torch.float64)
    return (f"{images.data_ptr()}:{tuple(images.shape)}:{float(sample.sum()):.9e}:"
            f"{float((sample * sample).sum()):.9e}")


def write_run_frames(images: torch.Tensor, temp_dir: Path, node_key: str) -> dict[str, list]:
    """Store the frames as JPEG for the editor and describe them for the node's ``ui`` payload.

    Args:
        images: IMAGE ``[T, H, W, 3]`` 0..1 (any device).
        temp_dir: ComfyUI's temp folder.
        node_key: identifies the node (its id), so each node keeps one set of frames.
    Returns:
        ``{"vanish_frames": [{"filename", "subfolder", "type"}...], "vanish_frame_size": [W, H]}``
        (``vanish_frame_size`` is the size of the frames the prompts refer to, not of the JPEGs).
    """
    folder = temp_dir / RUN_FRAMES_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    prefix = _prefix(node_key)
    fingerprint = frames_fingerprint(images)
    previous = _read_manifest(folder / f"{prefix}.json", node_key)
    if previous is not None and previous.get("fingerprint") == fingerprint and all(
            (folder / ref["filename"]).is_file() for ref in previous["vanish_frames"]):
        return {k: previous[k] for k in ("vanish_frames", "vanish_frame_size")}  # only prompts changed
    for old in folder.glob(prefix + "_*.jpg"):  # our own previous set only
        old.unlink(missing_ok=True)
    count, height, width = int(images.shape[0]), int(images.shape[1]), int(images.shape[2])
    size = _shrunk_size(width, height)
    refs = []
    for t in range(min(count, MAX_FRAMES)):
        frame = images[t].detach().to("cpu", torch.float32).numpy()  # [H, W, 3], no copy on CPU
        if size != (width, height):  # shrink first: converting the full frame costs ~8x more
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        rgb = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
        name = f"{prefix}_{t:05d}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        refs.append({"filename": name, "subfolder": RUN_FRAMES_SUBFOLDER, "type": "temp"})
    if count > MAX_FRAMES:
        logger.info("prompt editor shows the first %d of %d frames", MAX_FRAMES, count)
    found = {"vanish_frames": refs, "vanish_frame_size": [width, height]}
    # for an editor opened later (page reload) while ComfyUI reuses the node's cached output
    manifest = {"node": node_key, "fingerprint": fingerprint, **found}
    (folder / f"{prefix}.json").write_text(json.dumps(manifest), encoding="utf-8")
    return found


def _read_manifest(path: Path, node_key: str) -> dict | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(found, dict) or found.get("node") != node_key
            or not isinstance(found.get("vanish_frames"), list) or "vanish_frame_size" not in found):
        return None
    return found


def read_run_frames(temp_dir: Path, node_key: str) -> dict | None:
    """What :func:`write_run_frames` returned for ``node_key``, or None when it never ran."""
    found = _read_manifest(temp_dir / RUN_FRAMES_SUBFOLDER / f"{_prefix(node_key)}.json", node_key)
    return None if found is None else {k: found[k] for k in ("vanish_frames", "vanish_frame_size")}
