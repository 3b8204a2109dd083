"""Random-weight ProPainter networks and a small boxed-hole clip for the core's pipeline tests.

The networks have the real architecture (the values do not matter, only the work and that two
ways of running agree); ``STAGE_MODULES`` names, per pipeline stage, the module whose first call
starts it, for hooks that act at a stage's start (a cancel, a failure, a thread-count probe).
"""
from __future__ import annotations

from typing import Callable

import torch

from propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
from propainter_core.generator import GeneratorConfig, build_generator
from propainter_core.pipeline.models import ProPainterModels
from propainter_core.raft import RaftConfig, build_raft

STAGE_MODULES: dict[str, Callable[[ProPainterModels], torch.nn.Module]] = {
    "raft refinement": lambda m: m.raft.update_block.encoder,  # called by forward and the fast step
    "raft encoders": lambda m: m.raft.fnet,
    "flow completion": lambda m: m.flow_completion,
    "image propagation": lambda m: m.generator.img_prop_module,
    "generator window": lambda m: m.generator.encoder,
}


def random_models(seed: int = 0) -> ProPainterModels:
    """The three networks with random weights (seeded), in eval mode, fp32 on the CPU."""
    torch.manual_seed(seed)
    return ProPainterModels(raft=build_raft(RaftConfig()).eval(),
                            flow_completion=build_flow_completion(FlowCompletionConfig()).eval(),
                            generator=build_generator(GeneratorConfig()).eval(),
                            device=torch.device("cpu"), dtype=torch.float32)


def boxed_clip(frames: int = 6, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 frames ``[T, size, size, 3]`` and a 40x40 hole in every frame ``[T, size, size]``."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (frames, size, size, 3), dtype=torch.uint8, generator=generator)
    masks = torch.zeros(frames, size, size)
    masks[:, 40:80, 50:90] = 1
    return images, masks
