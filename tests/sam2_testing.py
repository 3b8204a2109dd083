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


class FakePredictor:
    """Just enough of SAM2VideoPredictor to run the orchestration over long clips: it stores a
    memory entry per tracked frame like the real one, and predicts a band per object."""

    image_size, num_maskmem, max_obj_ptrs_in_encoder, memory_temporal_stride_for_eval = 8, 7, 16, 1
    device = torch.device("cpu")

    def __init__(self):
        self.sessions, self.peak_memory, self.masks_added, self.points_added = 0, 0, [], []

    def _index(self, state, obj_id):
        if obj_id not in state["obj_id_to_idx"]:
            idx = len(state["obj_id_to_idx"])
            state["obj_id_to_idx"][obj_id] = idx
            state["obj_ids"] = list(state["obj_id_to_idx"])
            state["output_dict_per_obj"][idx] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        return state["obj_id_to_idx"][obj_id]

    def add_new_points_or_box(self, state, frame_idx, obj_id, points=None, labels=None, box=None):
        if not state["obj_ids"]:
            self.sessions += 1
        self.points_added.append((frame_idx, obj_id, points, labels, box))
        state["output_dict_per_obj"][self._index(state, obj_id)]["cond_frame_outputs"][frame_idx] = {}

    def add_new_mask(self, state, frame_idx, obj_id, mask):
        self.masks_added.append((frame_idx, obj_id))
        state["output_dict_per_obj"][self._index(state, obj_id)]["cond_frame_outputs"][frame_idx] = {}

    def propagate_in_video(self, state, start_frame_idx, max_frame_num_to_track, reverse):
        step = -1 if reverse else 1
        end = start_frame_idx + step * max_frame_num_to_track
        for t in range(start_frame_idx, end + step, step):
            logits = torch.full((len(state["obj_ids"]), 1, state["video_height"], state["video_width"]), -1.0)
            for i, obj_id in enumerate(state["obj_ids"]):
                state["output_dict_per_obj"][i]["non_cond_frame_outputs"][t] = {}
                logits[i, 0, :, obj_id] = 1.0
            self.peak_memory = max(self.peak_memory, sum(
                len(o["non_cond_frame_outputs"]) for o in state["output_dict_per_obj"].values()))
            yield t, list(state["obj_ids"]), logits


def fake_handle(fake: FakePredictor):
    """A ``SAM2Handle`` around a :class:`FakePredictor` (for node tests)."""
    from vanish.nodes.ops import sam2_loader

    class _Managed:
        def load(self):
            return fake

        def offload(self):
            pass

    return sam2_loader.SAM2Handle(fake, _Managed(), sam2_loader.SAM2Variant("2.1", "tiny"),  # type: ignore[arg-type]
                                  Path("fake.pt"), torch.device("cpu"), torch.float32)
