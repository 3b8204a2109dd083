"""The one place that reads checkpoint files and maps their keys onto our networks.

* :func:`read_state_dict` reads ``.pth`` / ``.pt`` (``torch.load`` with ``weights_only=True``)
  and ``.safetensors`` files and unwraps ``{"model": ...}``-style training wrappers.
* :func:`load_weights` strips RAFT's ``module.`` (DataParallel) prefix and loads strictly:
  every key of the file must land in the network and every network entry must come from the
  file. Otherwise it raises :class:`CheckpointError` naming the file, the differing keys and
  what the file looks like instead.
* :func:`identify_checkpoint` recognises the three ProPainter checkpoints and common wrong files.
* :func:`convert_to_safetensors` rewrites a checkpoint as ``.safetensors`` (never overwriting).

Our module trees mirror the official ones, so apart from the prefix no key is renamed.
"""
from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Union

import torch
from torch import nn

logger = logging.getLogger(__name__)

NetworkName = Literal["raft", "flow_completion", "generator"]
PathLike = Union[str, "os.PathLike[str]"]

#: What each recognised kind of checkpoint is, for messages.
CHECKPOINT_DESCRIPTIONS: dict[str, str] = {
    "raft": "a RAFT optical-flow checkpoint (ProPainter's raft-things.pth)",
    "flow_completion": "a ProPainter flow-completion checkpoint (recurrent_flow_completion.pth)",
    "generator": "a ProPainter InpaintGenerator checkpoint (ProPainter.pth)",
    "sam2": "a SAM 2 segmentation checkpoint (sam2*.pt / sam2*.safetensors)",
    "stable_diffusion": "a Stable-Diffusion-like image-model checkpoint (UNet / VAE / text encoder)",
}
#: The official file each network loads (https://github.com/sczhou/ProPainter/releases).
OFFICIAL_FILE_NAMES: dict[str, str] = {
    "raft": "raft-things.pth",
    "flow_completion": "recurrent_flow_completion.pth",
    "generator": "ProPainter.pth",
}
#: Training scripts store the weights under one of these keys (timm/basicsr/lightning style).
WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params", "net", "generator")
#: parity: model/modules/flow_comp_raft.py:19 wraps RAFT in DataParallel before loading,
#: so every key of raft-things.pth starts with this.
DATA_PARALLEL_PREFIX = "module."
_SHOWN_KEYS = 5


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not fit the network it was given to."""


# ----------------------------------------------------------------------------- reading

def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if not isinstance(obj, Mapping) or all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} does not hold a state dict (a mapping of names to tensors) but a "
            f"{type(obj).__name__}; it is not a network weights file.")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        shown = ", ".join(repr(k) for k in list(obj)[:_SHOWN_KEYS])
        raise CheckpointError(
            f"{path} holds no tensors (top-level entries: {shown or 'none'}); "
            "it is not a network weights file.")
    skipped = len(obj) - len(tensors)
    if skipped:
        logger.debug("%s: ignored %d non-tensor entries", path, skipped)
    return tensors


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file opens with an 8-byte little-endian header length, then ``{``."""
    with path.open("rb") as handle:
        head = handle.read(9)
    return (len(head) == 9 and head[8:9] == b"{"
            and int.from_bytes(head[:8], "little") < path.stat().st_size)


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file onto the CPU, keys as stored.

    Args:
        path: A ``.safetensors`` file, or a ``torch.save`` file (``.pth``, ``.pt``, ``.ckpt``,
            ``.bin``), read with ``weights_only=True`` (no code from the file runs). The
            format is recognised from the content too, so a renamed file still reads.

    Returns:
        ``{key: tensor}``. A training wrapper (``{"model": sd}``, ``{"state_dict": sd}``,
        ``{"params": sd}``...) is unwrapped; non-tensor entries are left out.

    Raises:
        CheckpointError: If the file is missing, truncated, not a checkpoint, or holds
            Python objects the safe loader refuses. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(
                f"cannot read {path} as safetensors ({type(exc).__name__}: {exc}). The file is "
                "probably truncated (an interrupted download) or not a safetensors file.") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... on bad files
        message = str(exc)
        if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in message:
            reason = next((line.strip() for line in message.splitlines()
                           if "Unsupported global" in line), "unsupported Python objects")
            reason = reason.split(" was not an allowed")[0]
            raise CheckpointError(
                f"cannot read {path}: it holds Python objects besides tensors, which the safe "
                f"loader (torch.load weights_only=True) refuses ({reason}). Use a plain "
                "state-dict file, or a .safetensors file.") from exc
        first_line = (message.splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"cannot read {path} ({type(exc).__name__}: {first_line}). The file is probably "
            "truncated (an interrupted download) or not a PyTorch checkpoint.") from exc
    return _unwrap(obj, path)


def strip_data_parallel_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix that every key carries (``DataParallel`` checkpoints)."""
    if state_dict and all(k.startswith(DATA_PARALLEL_PREFIX) for k in state_dict):
        return {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in state_dict.items()}
    return dict(state_dict)


# ------------------------------------------------------------------------- identifying

def _has_prefix(keys: list[str], *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in keys)


def identify_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Guess what a state dict is from signature keys.

    Returns:
        ``"raft"``, ``"flow_completion"``, ``"generator"``, ``"sam2"``, ``"stable_diffusion"``
        (keys of :data:`CHECKPOINT_DESCRIPTIONS`), or ``None`` if unknown.
    """
    keys = list(strip_data_parallel_prefix(state_dict))
    if _has_prefix(keys, "fnet.") and _has_prefix(keys, "cnet.") and _has_prefix(keys, "update_block."):
        return "raft"
    if _has_prefix(keys, "edgeDetector.") and _has_prefix(keys, "mid_dilation."):
        return "flow_completion"
    if _has_prefix(keys, "transformers.transformer.") and _has_prefix(keys, "ss.", "sc."):
        return "generator"
    if _has_prefix(keys, "image_encoder.trunk.", "sam_mask_decoder.", "memory_attention."):
        return "sam2"
    if _has_prefix(keys, "model.diffusion_model.", "first_stage_model.", "cond_stage_model.",
                   "conditioner.embedders.") or (
            _has_prefix(keys, "down_blocks.") and _has_prefix(keys, "mid_block.")):
        return "stable_diffusion"
    return None


def describe_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """One sentence on what the file looks like, for error messages."""
    kind = identify_checkpoint(state_dict)
    if kind is not None:
        return f"The file looks like {CHECKPOINT_DESCRIPTIONS[kind]}."
    first = ", ".join(list(state_dict)[:_SHOWN_KEYS])
    return (f"The file is not a checkpoint we recognise ({len(state_dict)} tensors; "
            f"first keys: {first}).")


# ----------------------------------------------------------------------------- loading

def _alias_groups(module: nn.Module) -> list[list[str]]:
    """Groups of state-dict keys that name one tensor (RAFT's ``norm3`` = ``downsample.1``)."""
    by_tensor: dict[int, list[str]] = {}
    for key, value in module.state_dict(keep_vars=True).items():
        by_tensor.setdefault(id(value), []).append(key)
    return [keys for keys in by_tensor.values() if len(keys) > 1]


def _differences(module: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k} (file {list(state_dict[k].shape)}, network {list(v.shape)})"
        for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape
    ]
    unequal_aliases = [
        " = ".join(group) for group in _alias_groups(module)
        if all(k in state_dict for k in group) and not all(
            state_dict[group[0]].shape == state_dict[k].shape
            and torch.equal(state_dict[group[0]], state_dict[k]) for k in group[1:])
    ]
    lines = []
    for label, items in (("missing from the file", missing), ("unexpected in the file", unexpected),
                         ("with the wrong shape", wrong_shape),
                         ("naming one shared tensor but holding different values", unequal_aliases)):
        if items:
            shown = ", ".join(items[:_SHOWN_KEYS]) + (", ..." if len(items) > _SHOWN_KEYS else "")
            lines.append(f"{len(items)} key(s) {label}: {shown}")
    return lines


def load_weights(module: nn.Module, path: PathLike, *, network: NetworkName) -> None:
    """Load a checkpoint file into ``module`` strictly, in place.

    Args:
        module: The network, built by its ``build_*`` function (any device; tensors are copied
            onto the module's devices and dtypes).
        path: The checkpoint file (``.pth``/``.pt``/``.safetensors``; wrappers allowed).
        network: Which network ``module`` is: ``"raft"``, ``"flow_completion"`` or
            ``"generator"`` (used for the error message).

    Raises:
        CheckpointError: If the file cannot be read, or if any key is missing, unexpected, of
            the wrong shape, or if two aliased keys hold different values. The message names
            the file, the network, counts and the first differing keys of each kind, and what
            the file looks like instead.
    """
    if network not in OFFICIAL_FILE_NAMES:
        raise ValueError(f"network must be one of {sorted(OFFICIAL_FILE_NAMES)}, got {network!r}")
    path = Path(path)
    raw = read_state_dict(path)
    state_dict = strip_data_parallel_prefix(raw)
    problems = _differences(module, state_dict)
    if problems:
        details = "\n  ".join(problems)
        raise CheckpointError(
            f"{path} does not fit the {network} network "
            f"(expected {CHECKPOINT_DESCRIPTIONS[network]}):\n  {details}\n"
            f"{describe_checkpoint(raw)} Use the official {OFFICIAL_FILE_NAMES[network]} "
            "or a conversion of it.")
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"{path} could not be loaded into the {network} network: {exc}") from exc
    logger.info("loaded %s weights from %s (%d tensors)", network, path, len(state_dict))


# -------------------------------------------------------------------------- converting

def _own_storage(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors that share no storage (safetensors refuses shared tensors)."""
    seen: set[int] = set()
    out = {}
    for key, value in state_dict.items():
        pointer = value.untyped_storage().data_ptr()
        shared = pointer in seen or value.untyped_storage().nbytes() != value.nbytes
        seen.add(pointer)
        out[key] = value.contiguous().clone() if shared or not value.is_contiguous() else value
    return out


def convert_to_safetensors(src: PathLike, dst: PathLike | None = None, *,
                           overwrite: bool = False) -> Path:
    """Rewrite a checkpoint as ``.safetensors`` with the same keys and values.

    Aliased tensors (RAFT's ``norm3`` / ``downsample.1``) are stored as separate copies.

    Args:
        src: The checkpoint to read (any format :func:`read_state_dict` reads).
        dst: Where to write; default: ``src`` with the suffix ``.safetensors``.
        overwrite: Replace an existing ``dst``. Off by default: an existing file is never lost.

    Returns:
        The written path.

    Raises:
        CheckpointError: If ``src`` cannot be read, or ``dst`` is ``src``.
        FileExistsError: If ``dst`` exists and ``overwrite`` is False.
    """
    from safetensors.torch import save_file

    src = Path(src)
    dst = src.with_suffix(".safetensors") if dst is None else Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise CheckpointError(f"cannot convert {src} onto itself; choose another destination")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} already exists; pass overwrite=True to replace it")
    tensors = _own_storage(read_state_dict(src))
    partial = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        save_file(tensors, str(partial), metadata={"format": "pt", "converted_from": src.name})
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("converted %s -> %s (%d tensors)", src, dst, len(tensors))
    return dst
