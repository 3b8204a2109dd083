"""Backward warping of images and feature maps by optical flow.

``flow_warp(x, flow)`` reads, for every output pixel ``p``, the input at ``p + flow[p]``: the
flow points from the output frame into the frame being sampled. Image propagation, feature
propagation and the forward-backward consistency check all warp this way.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Interpolation = Literal["bilinear", "nearest"]
PaddingMode = Literal["zeros", "border", "reflection"]

_INTERPOLATIONS = ("bilinear", "nearest")
_PADDING_MODES = ("zeros", "border", "reflection")


def _check_warp_inputs(x: Tensor, flow: Tensor, interpolation: str, padding_mode: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"flow_warp: x must have shape [N, C, H, W], got {tuple(x.shape)}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow_warp: flow must have shape [N, 2, H, W], got {tuple(flow.shape)}")
    if flow.shape[0] != x.shape[0] or flow.shape[-2:] != x.shape[-2:]:
        raise ValueError(
            f"flow_warp: flow [N={flow.shape[0]}, 2, H={flow.shape[2]}, W={flow.shape[3]}] does not "
            f"match x [N={x.shape[0]}, C, H={x.shape[2]}, W={x.shape[3]}]")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"flow_warp: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"flow_warp: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")


def flow_to_sampling_grid(flow: Tensor) -> Tensor:
    """Normalised ``grid_sample`` coordinates (``align_corners=True``) of ``pixel + flow``.

    Args:
        flow: ``[N, 2, H, W]`` displacement in pixels, channel 0 = x (right), 1 = y (down).

    Returns:
        ``[N, H, W, 2]`` grid, last dim ``(x, y)`` in ``[-1, 1]`` for positions inside the frame.
    """
    _, _, height, width = flow.shape
    cols = torch.arange(width, device=flow.device).to(flow.dtype).view(1, 1, width)
    rows = torch.arange(height, device=flow.device).to(flow.dtype).view(1, height, 1)
    # parity: model/modules/flow_loss_utils.py:35-38 adds the integer mesh to the flow, then maps
    # with 2 * p / max(size - 1, 1) - 1 in that order; we keep the order so that nearest-neighbour
    # ties round exactly as the original's do.
    grid_x = 2.0 * (cols + flow[:, 0]) / max(width - 1, 1) - 1.0  # [N, H, W]
    grid_y = 2.0 * (rows + flow[:, 1]) / max(height - 1, 1) - 1.0
    return torch.stack((grid_x, grid_y), dim=3)  # [N, H, W, 2]


def flow_warp(x: Tensor, flow: Tensor, interpolation: Interpolation = "bilinear",
              padding_mode: PaddingMode = "zeros") -> Tensor:
    """Backward-warp ``x`` by ``flow``: ``out[p] = x[p + flow[p]]``.

    Args:
        x: ``[N, C, H, W]`` image or features.
        flow: ``[N, 2, H, W]`` displacement in pixels, channel 0 = x, channel 1 = y. Channel-first
            like every flow in the pipeline (the official helper takes ``[N, H, W, 2]`` and its
            callers permute; we permute here instead).
        interpolation: ``"bilinear"`` or ``"nearest"`` (ties round half to even, as
            ``grid_sample`` does).
        padding_mode: what is read outside the frame: ``"zeros"``, ``"border"`` or ``"reflection"``.

    Returns:
        ``[N, C, H, W]`` warped ``x``, in ``x``'s dtype.

    Raises:
        ValueError: mismatched shapes or an unknown mode.
    """
    _check_warp_inputs(x, flow, interpolation, padding_mode)
    grid = flow_to_sampling_grid(flow.to(x.dtype))
    # parity: flow_loss_utils.py:40 samples with align_corners=True (pixel centres at -1 and 1).
    return F.grid_sample(x, grid, mode=interpolation, padding_mode=padding_mode, align_corners=True)
