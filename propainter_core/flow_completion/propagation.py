"""Bidirectional recurrent propagation of 1/8-resolution flow features (BasicVSR++ style)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .alignment import SecondOrderDeformableAlignment

Direction = Literal["backward_", "forward_"]
# parity: model/recurrent_flow_completion.py:49. The order matters: the forward pass reads the
# backward pass's features, and the names are the checkpoint's ModuleDict keys.
DIRECTIONS: tuple[Direction, ...] = ("backward_", "forward_")


class BidirectionalPropagation(nn.Module):
    """Propagate features backward then forward in time, aligning with second-order deformable convs.

    Args:
        channels: ``C``, the feature width.
        deform_groups: offset groups of each alignment.
        max_residue_magnitude: offset bound of each alignment, in pixels.
        negative_slope: LeakyReLU slope of the backbones and offset heads.
    """

    def __init__(self, channels: int, *, deform_groups: int, max_residue_magnitude: float,
                 negative_slope: float) -> None:
        super().__init__()
        self.channels = channels
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for position, direction in enumerate(DIRECTIONS):
            self.deform_align[direction] = SecondOrderDeformableAlignment(
                channels, deform_groups=deform_groups, max_residue_magnitude=max_residue_magnitude,
                negative_slope=negative_slope)
            # Input: current features, the features of every earlier direction, the propagated ones.
            self.backbone[direction] = nn.Sequential(
                nn.Conv2d((2 + position) * channels, channels, 3, 1, 1),
                nn.LeakyReLU(negative_slope, inplace=True),
                nn.Conv2d(channels, channels, 3, 1, 1),
            )
        self.fusion = nn.Conv2d(len(DIRECTIONS) * channels, channels, 1, 1, 0)

    def _propagate(self, direction: Direction, frames: list[Tensor],
                   earlier: list[list[Tensor]]) -> list[Tensor]:
        """Run one direction over ``frames`` (each ``[B, C, h, w]``); returns features in frame order.

        ``earlier`` holds the per-frame outputs of the directions already run (frame order).
        """
        order = range(len(frames))
        if direction == "backward_":
            order = order[::-1]
        align, backbone = self.deform_align[direction], self.backbone[direction]
        outputs: list[Tensor] = []
        prop = torch.zeros_like(frames[0])
        for step, index in enumerate(order):
            current = frames[index]
            if step > 0:
                # parity: model/recurrent_flow_completion.py:82-93. Second-order features are zeros
                # for the second frame; the condition repeats them (no flow warp in this network).
                second = outputs[-2] if step > 1 else torch.zeros_like(prop)
                condition = torch.cat([prop, current, second], dim=1)  # [B, 3C, h, w]
                prop = align(torch.cat([prop, second], dim=1), condition)
            fused = torch.cat([current, *(feats[index] for feats in earlier), prop], dim=1)
            prop = prop + backbone(fused)
            outputs.append(prop)
        return outputs[::-1] if direction == "backward_" else outputs

    def forward(self, features: Tensor) -> Tensor:
        """``[B, T, C, h, w]`` -> ``[B, T, C, h, w]`` (residual: fused propagation plus the input)."""
        frames = list(features.unbind(dim=1))
        per_direction: list[list[Tensor]] = []
        for direction in DIRECTIONS:
            per_direction.append(self._propagate(direction, frames, per_direction))
        fused = [self.fusion(torch.cat([feats[t] for feats in per_direction], dim=1))
                 for t in range(len(frames))]
        return torch.stack(fused, dim=1) + features
