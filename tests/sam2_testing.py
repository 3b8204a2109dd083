"""Shared helpers for the SAM 2 tests: a small real-config model, fake checkpoints, test clips.

No SAM 2 weights can be downloaded here, so the tests use randomly initialised models built from
the ``sam2`` package's own configs. ``IMAGE_SIZE`` shrinks the model input (weights do not depend
on it) so a tracking step takes a fraction of the 1024 cost on CPU.
"""
from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

import torch

IMAGE_SIZE = 64  # model input for tests (official: 1024); the Hiera windows still fit


@functools.lru_cache(maxsize=None)
def tiny_predictor(version: str = "2.1"):
    """A SAM 2(.1) tiny video predictor with seeded random weights at ``IMAGE_SIZE`` (cached)."""
    from vanish.nodes.ops import sam2_loader

    torch.manual_seed(0)
    return sam2_loader.build_predictor(sam2_loader.SAM2Variant(version, "tiny"), IMAGE_SIZE)


def handle_for(predictor, path: Path = Path("test.pt")):
    """Wrap a predictor as the loader node would (CPU, fp32)."""
    from vanish.nodes import _comfy
    from vanish.nodes.ops import sam2_loader

    cpu = torch.device("cpu")
    variant = sam2_loader.detect_variant(predictor.state_dict())
    return sam2_loader.SAM2Handle(predictor, _comfy.ManagedModel(predictor, cpu), variant, path,
                                  cpu, torch.float32)


def config_trunk(version: str, size: str) -> tuple[int, int]:
    """``(embed_dim, block count)`` read from the package's YAML for that model."""
    from omegaconf import OmegaConf

    from vanish.nodes.ops import sam2_loader

    variant = sam2_loader.SAM2Variant(version, size)  # type: ignore[arg-type]
    cfg = OmegaConf.load(str(files("sam2").joinpath(variant.config_name)))
    trunk = cfg.model.image_encoder.trunk
    stages = list(trunk.get("stages", [2, 3, 16, 3]))  # Hiera's default (base+ leaves it out)
    return int(trunk.embed_dim), sum(stages)


def fake_state(version: str, size: str) -> dict[str, torch.Tensor]:
    """The keys and shapes detection reads, as the real checkpoint of that model has them."""
    dim, blocks = config_trunk(version, size)
    state = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(dim, 3, 7, 7),
             "memory_attention.layers.0.norm1.weight": torch.zeros(256),
             "sam_mask_decoder.iou_token.weight": torch.zeros(1, 256)}
    for i in range(blocks):
        state[f"image_encoder.trunk.blocks.{i}.norm1.weight"] = torch.zeros(dim)
    if version == "2.1":
        state["no_obj_embed_spatial"] = torch.zeros(1, 64)
        state["obj_ptr_tpos_proj.weight"] = torch.zeros(64, 256)
    return state


def moving_square_clip(frames: int = 3, height: int = 48, width: int = 64) -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]``: a grey gradient with a red square moving right."""
    ys = torch.linspace(0, 1, height)[:, None].expand(height, width)
    base = torch.stack([ys * 0.5, ys * 0.5, ys * 0.5 + 0.2], dim=-1)  # [H, W, 3]
    clip = base.unsqueeze(0).repeat(frames, 1, 1, 1)
    for t in range(frames):
        x0 = 8 + 4 * t
        clip[t, 16:32, x0:x0 + 16] = torch.tensor([0.9, 0.1, 0.1])
    return clip.contiguous()
