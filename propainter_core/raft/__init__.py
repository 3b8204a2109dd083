"""RAFT optical flow (the full ``raft-things`` model ProPainter uses), pure PyTorch.

Usage::

    raft = build_raft(RaftConfig())
    load_weights(raft, "raft-things.pth", network="raft")   # from propainter_core.checkpoints
    flows_forward, flows_backward = bidirectional_flow(raft, frames, iters=20)
"""
from __future__ import annotations

from .bidirectional import bidirectional_flow
from .config import RaftConfig
from .correlation import CorrelationPyramid
from .encoders import ConvEncoder, ResidualBlock
from .model import RAFT, build_raft, pixel_grid
from .update import FlowHead, MotionEncoder, SepConvGRU, UpdateBlock

__all__ = [
    "RAFT",
    "ConvEncoder",
    "CorrelationPyramid",
    "FlowHead",
    "MotionEncoder",
    "RaftConfig",
    "ResidualBlock",
    "SepConvGRU",
    "UpdateBlock",
    "bidirectional_flow",
    "build_raft",
    "pixel_grid",
]
