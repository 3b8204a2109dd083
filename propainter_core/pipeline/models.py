"""The three networks of one ProPainter set-up, built and loaded from checkpoint files."""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

import torch
from torch import nn

from ..checkpoints import load_weights
from ..flow_completion import FlowCompletionConfig, build_flow_completion
from ..generator import GeneratorConfig, build_generator
from ..raft import RaftConfig, build_raft
from .precision import FLOW_DTYPE, check_model_dtype


@dataclass
class ProPainterModels:
    """RAFT, the recurrent flow-completion network and the InpaintGenerator, ready to run.

    Attributes:
        raft: Optical flow (always float32).
        flow_completion: Recurrent flow completion, in ``dtype``.
        generator: The InpaintGenerator (image propagation and transformer), in ``dtype``.
        device: Where all three are.
        dtype: The dtype of ``flow_completion`` and ``generator``.
    """

    raft: nn.Module
    flow_completion: nn.Module
    generator: nn.Module
    device: torch.device
    dtype: torch.dtype = torch.float32


def _ready(module: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    module = module.to(device=device, dtype=dtype).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def load_models(raft: str | PathLike[str], flow_completion: str | PathLike[str],
                generator: str | PathLike[str], device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32) -> ProPainterModels:
    """Build the three networks and load their official checkpoints (``.pth`` or ``.safetensors``).

    Args:
        raft: ``raft-things.pth`` (keys with the ``module.`` prefix are accepted).
        flow_completion: ``recurrent_flow_completion.pth``.
        generator: ``ProPainter.pth``.
        device: Where to put the networks; the core never chooses one itself.
        dtype: float32, or float16/bfloat16 on CUDA, for flow completion and the generator.
            RAFT stays float32 (parity: inference_propainter.py:311).

    Raises:
        CheckpointError: a file is missing, unreadable or holds another network's weights.
        InpaintInputError: half precision asked for a non-CUDA device.
    """
    device = torch.device(device)
    check_model_dtype(device, dtype)
    raft_net = build_raft(RaftConfig())
    load_weights(raft_net, raft, network="raft")
    completion_net = build_flow_completion(FlowCompletionConfig())
    load_weights(completion_net, flow_completion, network="flow_completion")
    generator_net = build_generator(GeneratorConfig())
    load_weights(generator_net, generator, network="generator")
    return ProPainterModels(raft=_ready(raft_net, device, FLOW_DTYPE),
                            flow_completion=_ready(completion_net, device, dtype),
                            generator=_ready(generator_net, device, dtype),
                            device=device, dtype=dtype)
