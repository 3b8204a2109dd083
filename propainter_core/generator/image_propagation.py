"""Image propagation: copy known pixels into the hole along consistent flow (no learned weights).

Pixels travel backward (last frame to first) and then forward. At each step a hole pixel of the
current frame takes the warped pixel of its neighbour when the flow between them passes the
forward-backward consistency check and the neighbour's pixel is not itself a hole; the hole
shrinks accordingly.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from ..ops.flow_warp import flow_warp
from ..ops.consistency import bidirectional_consistency


class PropagationResult(NamedTuple):
    """``frames`` ``[B, T, C, H, W]`` with the hole filled where possible; ``masks``
    ``[B, T, 1, H, W]`` the hole that is left (1 = still missing)."""

    frames: Tensor
    masks: Tensor


def _binarize(x: Tensor, threshold: float) -> Tensor:
    # parity: model/propainter.py:100-104 (binary_mask: > th -> 1, else 0).
    return (x > threshold).to(x.dtype)


def _propagation_pass(frames: list[Tensor], masks: list[Tensor], flows: Tensor, valid: Tensor, order: range,
                      flow_index: int, interpolation: str, threshold: float,
                      cancel: Callable[[], None] | None = None) -> tuple[list[Tensor], list[Tensor]]:
    """One pass over ``order``; step ``i`` pulls from the previous frame through ``flows[:, idx+flow_index]``."""
    out_frames, out_masks = list(frames), list(masks)
    prop, prop_mask = frames[order[0]], masks[order[0]]
    for idx in order[1:]:
        if cancel is not None:
            cancel()
        current, current_mask = frames[idx], masks[idx]
        flow = flows[:, idx + flow_index]
        consistent = valid[:, idx + flow_index]
        warped = flow_warp(prop, flow, interpolation)
        # parity: propainter.py:147 warps the mask bilinearly whatever ``interpolation`` is.
        warped_hole = _binarize(flow_warp(prop_mask, flow, "bilinear"), threshold)
        fill = _binarize(current_mask * consistent * (1 - warped_hole), threshold)
        prop = fill * warped + (1 - fill) * current
        prop_mask = _binarize(current_mask * (1 - (consistent * (1 - warped_hole))), threshold)
        out_frames[idx], out_masks[idx] = prop, prop_mask
    return out_frames, out_masks


def propagate_images(frames: Tensor, flows_forward: Tensor, flows_backward: Tensor, masks: Tensor, *,
                     interpolation: Literal["bilinear", "nearest"] = "nearest",
                     mask_threshold: float = 0.1,
                     cancel: Callable[[], None] | None = None) -> PropagationResult:
    """Fill the hole from neighbouring frames along the flow, backward then forward.

    Args:
        frames: ``[B, T, C, H, W]`` frames with the hole blanked (``frames * (1 - masks)``).
        flows_forward: ``[B, T-1, 2, H, W]``, ``[:, t]`` = flow t -> t+1 (pixels, x then y).
        flows_backward: ``[B, T-1, 2, H, W]``, ``[:, t]`` = flow t+1 -> t.
        masks: ``[B, T, 1, H, W]`` hole masks, 1 = missing.
        interpolation: how pixels are warped (the pipeline uses ``"nearest"``).
        mask_threshold: warped masks count as hole above this value.
        cancel: called before every frame step; raises to stop (the pipeline's cancel check).

    Returns:
        :class:`PropagationResult` after the forward pass (``[B, T, C, H, W]``, ``[B, T, 1, H, W]``).
    """
    if frames.ndim != 5 or masks.ndim != 5 or masks.shape[2] != 1:
        raise ValueError(f"propagate_images: expected frames [B, T, C, H, W] and masks [B, T, 1, H, W], "
                         f"got {tuple(frames.shape)} and {tuple(masks.shape)}")
    batch, length, _, height, width = frames.shape
    expected = (batch, length - 1, 2, height, width)
    for name, flow in (("flows_forward", flows_forward), ("flows_backward", flows_backward)):
        if tuple(flow.shape) != expected:
            raise ValueError(f"propagate_images: {name} must have shape [B, T-1, 2, H, W] = {list(expected)}, "
                             f"got {tuple(flow.shape)}")
    valid_b, valid_f = bidirectional_consistency(flows_forward, flows_backward)
    frame_list, mask_list = list(frames.unbind(1)), list(masks.unbind(1))
    # Backward pass: frame t pulls from t+1 through flow t -> t+1.
    frame_list, mask_list = _propagation_pass(frame_list, mask_list, flows_forward, valid_b,
                                              range(length - 1, -1, -1), 0, interpolation, mask_threshold,
                                              cancel)
    # Forward pass over the backward results: frame t pulls from t-1 through flow t -> t-1.
    frame_list, mask_list = _propagation_pass(frame_list, mask_list, flows_backward, valid_f, range(length), -1,
                                              interpolation, mask_threshold, cancel)
    return PropagationResult(torch.stack(frame_list, 1), torch.stack(mask_list, 1))


class ImagePropagation(nn.Module):
    """Module form of :func:`propagate_images` (the generator's ``img_prop_module``; no weights)."""

    def __init__(self, *, mask_threshold: float = 0.1) -> None:
        super().__init__()
        self.mask_threshold = mask_threshold

    def forward(self, frames: Tensor, flows_forward: Tensor, flows_backward: Tensor, masks: Tensor,
                interpolation: Literal["bilinear", "nearest"] = "nearest",
                cancel: Callable[[], None] | None = None) -> PropagationResult:
        return propagate_images(frames, flows_forward, flows_backward, masks, interpolation=interpolation,
                                mask_threshold=self.mask_threshold, cancel=cancel)
