"""Rebuild the pseudo-random ProPainter checkpoints described in ../shared/propainter_parity.

Each tensor is generated from its checkpoint key by the formula in that folder's README, so
the official code and ours load exactly the same numbers. ``write_checkpoint`` saves them the
way the official files are saved (a plain state dict in a ``.pth``), so tests go through the
same loading path users' real files take.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from shared_paths import PARITY_DIR

# network name used by the core -> manifest file
MANIFESTS = {
    "raft": "manifest_raft.json",
    "flow_completion": "manifest_flow_completion.json",
    "generator": "manifest_inpaint_generator.json",
}
OFFICIAL_FILE_NAMES = {
    "raft": "raft-things.pth",
    "flow_completion": "recurrent_flow_completion.pth",
    "generator": "ProPainter.pth",
}


def load_manifest(network: str) -> dict:
    return json.loads((PARITY_DIR / MANIFESTS[network]).read_text())


def _uniform(key: str, shape: list[int], a: float, b: float) -> np.ndarray:
    seed = zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF
    u = np.random.RandomState(seed).uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return np.float32(a) * u + np.float32(b)


def build_state_dict(network: str, *, verify: bool = False) -> "OrderedDict[str, torch.Tensor]":
    """The checkpoint's state dict, keys exactly as in the official file."""
    entries = load_manifest(network)["entries"]
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for e in entries:
        kind = e["kind"]
        if kind == "uniform":
            arr = _uniform(e["key"], e["shape"], e["a"], e["b"])
            if verify:
                digest = hashlib.sha256(np.ascontiguousarray(arr).astype("<f4").tobytes()).hexdigest()
                assert digest == e["sha256_le_bytes"], e["key"]
            out[e["key"]] = torch.from_numpy(np.ascontiguousarray(arr))
        elif kind == "int_zero":
            out[e["key"]] = torch.zeros(e["shape"], dtype=torch.int64)
        elif kind == "int_const":
            out[e["key"]] = torch.tensor(e["values"], dtype=torch.int64).reshape(e["shape"])
        elif kind == "alias":
            out[e["key"]] = out[e["alias_of"]]
        else:  # pragma: no cover - a new manifest kind
            raise ValueError(f"unknown manifest kind {kind!r} for {e['key']}")
    return out


def write_checkpoint(network: str, folder: Path) -> Path:
    """Save the rebuilt weights as the official file name (plain state dict, torch.save)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / OFFICIAL_FILE_NAMES[network]
    if not path.exists():
        torch.save(build_state_dict(network), path)
    return path
