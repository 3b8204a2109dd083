"""Forward-backward flow consistency: where do two opposite flows agree?"""
from __future__ import annotations

import torch
from torch import Tensor

from .flow_warp import flow_warp

# parity: model/propainter.py:22 defaults (the official check's alpha1, alpha2).
DEFAULT_ALPHA1 = 0.01
DEFAULT_ALPHA2 = 0.5


def _squared_length(vectors: Tensor) -> Tensor:
    """``[N, 2, H, W]`` -> ``[N, 1, H, W]`` squared Euclidean length per pixel."""
    return vectors.square().sum(dim=1, keepdim=True)


def forward_backward_consistency(flow_fw: Tensor, flow_bw: Tensor, *, alpha1: float = DEFAULT_ALPHA1,
                                 alpha2: float = DEFAULT_ALPHA2) -> Tensor:
    """Mask of pixels whose forward flow is undone by the backward flow (not occluded).

    A pixel ``p`` of frame A with forward flow ``f = flow_fw[p]`` (A -> B) is consistent when the
    backward flow at its target, ``b = flow_bw[p + f]`` (B -> A, bilinearly sampled), brings it
    back: ``|f + b|^2 < alpha1 * (|f|^2 + |b|^2) + alpha2`` (the test of Sundaram et al. 2010).

    Args:
        flow_fw: ``[N, 2, H, W]`` flow A -> B in pixels (channel 0 = x).
        flow_bw: ``[N, 2, H, W]`` flow B -> A.
        alpha1: tolerance growing with the flow magnitude.
        alpha2: constant tolerance in squared pixels.

    Returns:
        ``[N, 1, H, W]`` in ``flow_fw``'s dtype: 1 where consistent, 0 elsewhere.
    """
    if flow_fw.shape != flow_bw.shape:
        raise ValueError(f"forward_backward_consistency: flow_fw {tuple(flow_fw.shape)} and flow_bw "
                         f"{tuple(flow_bw.shape)} must have the same shape [N, 2, H, W]")
    flow_bw_at_target = flow_warp(flow_bw, flow_fw, "bilinear")  # b(p + f(p)), [N, 2, H, W]
    round_trip = flow_fw + flow_bw_at_target
    magnitude = _squared_length(flow_fw) + _squared_length(flow_bw_at_target)
    threshold = alpha1 * magnitude + alpha2
    # parity: model/propainter.py:22-31 (strict "<", result cast to the flow's dtype).
    return (_squared_length(round_trip) < threshold).to(flow_fw.dtype)


def bidirectional_consistency(flows_forward: Tensor, flows_backward: Tensor) -> tuple[Tensor, Tensor]:
    """Consistency of a clip's flows in both directions, every frame pair in one batched call.

    Args:
        flows_forward: ``[B, T-1, 2, H, W]``, ``[:, t]`` = flow t -> t+1.
        flows_backward: ``[B, T-1, 2, H, W]``, ``[:, t]`` = flow t+1 -> t.

    Returns:
        ``(valid_forward, valid_backward)``, each ``[B, T-1, 1, H, W]``: where flow t -> t+1 is
        undone by t+1 -> t, and where t+1 -> t is undone by t -> t+1. Batching changes no value:
        every pixel is computed independently.
    """
    if flows_forward.ndim != 5 or flows_forward.shape != flows_backward.shape or flows_forward.shape[2] != 2:
        raise ValueError(f"bidirectional_consistency: expected two [B, T-1, 2, H, W] flows, got "
                         f"{tuple(flows_forward.shape)} and {tuple(flows_backward.shape)}")
    batch, pairs, _, height, width = flows_forward.shape
    if pairs == 0:
        empty = flows_forward.new_zeros(batch, 0, 1, height, width)
        return empty, empty
    fw = torch.cat([flows_forward, flows_backward], dim=1).reshape(-1, 2, height, width)  # [B*2(T-1), 2, H, W]
    bw = torch.cat([flows_backward, flows_forward], dim=1).reshape(-1, 2, height, width)
    valid = forward_backward_consistency(fw, bw).view(batch, 2 * pairs, 1, height, width)
    return valid[:, :pairs], valid[:, pairs:]
