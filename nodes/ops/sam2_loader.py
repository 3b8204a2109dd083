"""Load SAM 2 / SAM 2.1 checkpoints safely and build the video predictor from the right config.

* Files: the official ``.pt`` (``{"model": state_dict}``), a bare state dict in ``.pt``/``.pth``,
  and ``.safetensors`` mirrors (any float dtype; ``model.``/``module.`` prefixes stripped).
  ``torch.load`` always runs with ``weights_only=True``: no arbitrary pickle.
* The config comes from the checkpoint itself (trunk width, block count, SAM 2.1-only keys),
  not from the file name, then the ``sam2`` package's own YAML config is instantiated through
  hydra with the video-predictor overrides.
* One loaded model is kept in a module-level cache and reused while the file (path, size,
  modification time and a sample of its content), precision, device and input size are unchanged.

This module imports ``sam2`` lazily and never imports torchvision (``sam2.sam2_video_predictor``
does not need it; ``sam2.sam2_image_predictor`` would).
"""
from __future__ import annotations

import contextlib
import logging
import pickle
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Iterator, Literal

import torch

from .. import _comfy
from .file_identity import file_identity

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
MODEL_FOLDER = "sam2"
MODEL_EXTENSIONS = (".pt", ".pth", ".safetensors")
DOWNLOAD_HINT = ("the official files are published by Meta at https://github.com/facebookresearch/sam2 "
                 "(checkpoints/download_ckpts.sh) and on https://huggingface.co/facebook "
                 "(e.g. facebook/sam2.1-hiera-base-plus)")

# trunk width (patch_embed channels) and block count -> size; from the sam2 package's configs
# (configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml: embed_dim and sum(stages))
_SIZE_BY_TRUNK: dict[tuple[int, int], str] = {
    (96, 12): "tiny", (96, 16): "small", (112, 24): "base_plus", (144, 48): "large"}
_CONFIG_SUFFIX = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
_SAM21_ONLY_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")
_TRUNK_KEY = "image_encoder.trunk.patch_embed.proj.weight"

# parity: sam2/build_sam.py:110-130 (build_sam2_video_predictor), except fill_hole_area: the
# official hole filling needs the CUDA extension sam2._C, which pure-Python installs lack (it
# warns and skips on every frame); Vanish fills holes itself in sam2_session.fill_small_holes.
VIDEO_PREDICTOR_OVERRIDES: dict[str, object] = {
    "model._target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "model.binarize_mask_from_pts_for_mem_enc": True,
    "model.fill_hole_area": 0,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with what to do about it."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\nFix: {fix}")


@dataclass(frozen=True)
class SAM2Variant:
    """Which SAM 2 model a checkpoint holds."""

    version: Literal["2", "2.1"]
    size: Literal["tiny", "small", "base_plus", "large"]

    @property
    def config_name(self) -> str:
        """Path of the config inside the ``sam2`` package, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``."""
        prefix = "sam2" if self.version == "2" else "sam2.1"
        return f"configs/{prefix}/{prefix}_hiera_{_CONFIG_SUFFIX[self.size]}.yaml"

    @property
    def official_filename(self) -> str:
        prefix = "sam2" if self.version == "2" else "sam2.1"
        return f"{prefix}_hiera_{self.size}.pt"


OFFICIAL_FILENAMES = [SAM2Variant(v, s).official_filename  # type: ignore[arg-type]
                      for v in ("2.1", "2") for s in ("tiny", "small", "base_plus", "large")]


@dataclass
class SAM2Handle:
    """A loaded SAM 2 video predictor (the ``VANISH_SAM2_MODEL`` value passed between nodes)."""

    predictor: torch.nn.Module  # sam2.sam2_video_predictor.SAM2VideoPredictor
    managed: _comfy.ManagedModel
    variant: SAM2Variant
    path: Path
    device: torch.device
    dtype: torch.dtype  # compute dtype (autocast); the weights stay float32

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)

    @contextlib.contextmanager
    def acquire(self) -> Iterator[torch.nn.Module]:
        """Put the model on its device (through ComfyUI's model management) for one run."""
        predictor = self.managed.load()
        autocast = (torch.autocast(self.device.type, dtype=self.dtype)
                    if self.dtype != torch.float32 else contextlib.nullcontext())
        try:
            with autocast:
                yield predictor
        finally:
            self.managed.offload()


# ---------------------------------------------------------------------- reading files
def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint into a flat float32 state dict on the CPU.

    Raises:
        CheckpointError: unreadable/truncated file, unsafe pickle, not a state dict.
    """
    size = path.stat().st_size if path.is_file() else 0
    damaged_fix = (f"download the file again (it has {size:,} bytes; an interrupted download "
                   f"leaves a truncated file); {DOWNLOAD_HINT}.")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            raw: object = load_file(str(path), device="cpu")
        else:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"'{path.name}' holds Python objects that cannot be loaded safely "
                              f"({str(exc).splitlines()[0][:160]}).",
                              f"use the official SAM 2 .pt or a .safetensors file; {DOWNLOAD_HINT}.") from exc
    except Exception as exc:  # torch/safetensors raise many types for a damaged file
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise CheckpointError(f"'{path.name}' could not be read: it is damaged or incomplete "
                              f"({type(exc).__name__}: {detail}).", damaged_fix) from exc
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict):
        raw = raw["model"]  # the official files: {"model": state_dict}
    elif isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise CheckpointError(f"'{path.name}' does not hold a state dict of tensors.",
                              f"use a SAM 2 checkpoint; {DOWNLOAD_HINT}.")
    state = {str(k): v for k, v in raw.items()}
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _guess_kind(keys: set[str]) -> str:
    def has(fragment: str) -> bool:
        return any(fragment in k for k in keys)

    if has("fnet.") and has("update_block."):
        return "a RAFT optical-flow checkpoint (ProPainter's raft-things.pth)"
    if has("encoder1.") and has("downsample."):
        return "ProPainter's flow-completion checkpoint (recurrent_flow_completion.pth)"
    if has("transformers.") or (has("encoder.layers.") and has("decoder.")):
        return "ProPainter's inpainting checkpoint (ProPainter.pth)"
    if has("image_encoder.blocks.") and has("mask_decoder."):
        return "a SAM 1 (segment-anything) checkpoint"
    if has("model.diffusion_model.") or has("diffusion_model."):
        return "an image-generation (diffusion) checkpoint"
    return "not a SAM 2 checkpoint"


def detect_variant(state: dict[str, torch.Tensor], name: str = "checkpoint") -> SAM2Variant:
    """Tell SAM 2 / 2.1 and tiny / small / base+ / large apart from the weights themselves.

    Raises:
        CheckpointError: the file is not SAM 2 (says what it probably is) or an unknown size.
    """
    keys = set(state)
    if _TRUNK_KEY not in keys or not any(k.startswith("memory_attention.") for k in keys):
        raise CheckpointError(f"'{name}' is not a SAM 2 checkpoint; it looks like {_guess_kind(keys)}.",
                              f"choose a SAM 2 file ({', '.join(OFFICIAL_FILENAMES[:4])}, ...) in "
                              f"models/{MODEL_FOLDER}; {DOWNLOAD_HINT}.")
    width = int(state[_TRUNK_KEY].shape[0])
    blocks = 1 + max(int(k.split(".")[3]) for k in keys if k.startswith("image_encoder.trunk.blocks."))
    size = _SIZE_BY_TRUNK.get((width, blocks))
    if size is None:
        raise CheckpointError(f"'{name}' is a SAM 2-like model with an unknown trunk ({width} channels, "
                              f"{blocks} blocks).", "use one of the official tiny/small/base+/large files.")
    version = "2.1" if any(k in keys for k in _SAM21_ONLY_KEYS) else "2"
    return SAM2Variant(version, size)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- building
def build_predictor(variant: SAM2Variant, image_size: int | None = None,
                    overrides: dict[str, object] | None = None) -> torch.nn.Module:
    """Instantiate the video predictor (random weights, CPU, eval) from the package config.

    Args:
        image_size: override the model input size (1024 in every official config); tests use a
            small size for speed. Weights do not depend on it.
        overrides: further ``{"model.dotted.key": value}`` config overrides (tests shrink the
            networks with them; hydra's ``++model.key=value`` in the official builder).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config_path = files("sam2").joinpath(variant.config_name)
    cfg = OmegaConf.load(str(config_path))
    extra, overrides = overrides, dict(VIDEO_PREDICTOR_OVERRIDES)
    if image_size is not None:
        overrides["model.image_size"] = int(image_size)
    overrides.update(extra or {})
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    return model.eval()


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Strict load with a readable diff (the official loader only logs the keys)."""
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        raise CheckpointError(f"'{name}' does not match the detected SAM 2 config: "
                              f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} "
                              f"unexpected keys (e.g. {unexpected[:3]}).",
                              f"use an unmodified official SAM 2 / 2.1 file; {DOWNLOAD_HINT}.")


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """The compute dtype for ``precision`` on ``device`` (fp32 where the device lacks it)."""
    if precision == "fp32":
        return torch.float32
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning("this GPU has no bf16; SAM 2 runs in fp16")
            return torch.float16
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if precision == "auto":
        return torch.float32
    if device.type == "cpu" and precision == "fp16":
        logger.warning("fp16 is not supported on the CPU; SAM 2 runs in fp32")
        return torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float16


# ---------------------------------------------------------------------- cache
_cache: dict[tuple, SAM2Handle] = {}


def load_sam2(path: Path, precision: Precision = "auto", device: torch.device | None = None,
              image_size: int | None = None) -> SAM2Handle:
    """Load (or reuse) the SAM 2 video predictor stored in ``path``.

    Raises:
        CheckpointError: see :func:`read_state_dict`, :func:`detect_variant`, :func:`load_weights`.
    """
    path = Path(path)
    device = device if device is not None else _comfy.torch_device()
    key = (file_identity(path), precision, str(device), image_size)
    if key in _cache:
        return _cache[key]
    _cache.clear()  # one SAM 2 model at a time: free the previous one before loading
    state = read_state_dict(path)
    variant = detect_variant(state, path.name)
    model = build_predictor(variant, image_size)
    load_weights(model, state, path.name)
    del state
    dtype = resolve_precision(precision, device)
    handle = SAM2Handle(model, _comfy.ManagedModel(model, device), variant, path, device, dtype)
    logger.info("loaded SAM %s %s from %s (%s on %s)", variant.version, variant.size, path, dtype, device)
    _cache[key] = handle
    return handle


def last_loaded_model() -> SAM2Handle | None:
    """The cached model, if one is loaded (for the editor's live preview)."""
    return next(iter(_cache.values()), None)


def clear_cache() -> None:
    _cache.clear()


def missing_checkpoint_message(filename: str) -> tuple[str, str]:
    """``(problem, fix)`` for a checkpoint name that is not in any ``sam2`` model folder."""
    folders = ", ".join(str(f) for f in _comfy.model_folders(MODEL_FOLDER)) or f"models/{MODEL_FOLDER}"
    problem = f"the checkpoint '{filename}' was not found in {folders}."
    fix = (f"put a SAM 2 checkpoint there, e.g. {', '.join(OFFICIAL_FILENAMES)} (or their "
           f".safetensors versions), then press R to refresh; {DOWNLOAD_HINT}.")
    return problem, fix
