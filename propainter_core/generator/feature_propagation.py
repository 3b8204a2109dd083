"""Flow-guided feature propagation with deformable alignment (the generator's ``feat_prop_module``).

Features of the local frames travel backward (last frame to first) and then forward through
time. At every step the propagated features are aligned to the current frame by a modulated
deformable convolution whose offsets are the (downsampled) flow plus a learned residue, refined
by a small residual network, and finally both directions are fused.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..ops.consistency import bidirectional_consistency
from ..ops.deform_conv import ModulatedDeformConv2d
from ..ops.flow_warp import flow_warp

# parity: model/propainter.py:91 — the two passes, in this order; also the checkpoint's keys.
PASSES = ("backward_1", "forward_1")


class DeformableAlignment(ModulatedDeformConv2d):
    """Align propagated features to the current frame: offsets = flow + bounded learned residue.

    ``conv_offset`` (keys ``conv_offset.{0,2,4,6}.*``) reads the condition (current features,
    warped features, flow, consistency mask, two mask channels) and predicts 2 offset halves and
    a modulation mask, 9 taps x ``deform_groups`` each.

    Args:
        channels: feature channels (input = output).
        deform_groups: offset groups.
        max_residue_magnitude: the learned residue is ``max_residue_magnitude * tanh(.)`` pixels.
    """

    def __init__(self, channels: int, *, deform_groups: int = 16, max_residue_magnitude: float = 3.0) -> None:
        super().__init__(channels, channels, 3, padding=1, deform_groups=deform_groups)
        self.max_residue_magnitude = max_residue_magnitude
        taps = self.kernel_size[0] * self.kernel_size[1]
        # parity: model/propainter.py:39-47 (2C + flow 2 + valid 1 + masks 2 inputs, slope 0.1).
        self.conv_offset = nn.Sequential(
            nn.Conv2d(2 * channels + 2 + 1 + 2, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, 3 * taps * deform_groups, 3, 1, 1),
        )

    def forward(self, x: Tensor, condition: Tensor, flow: Tensor) -> Tensor:  # type: ignore[override]
        """Align ``x``.

        Args:
            x: ``[N, C, h, w]`` features propagated from the neighbouring frame (not warped).
            condition: ``[N, 2C+5, h, w]`` offset-head input.
            flow: ``[N, 2, h, w]`` flow from the current frame to the neighbour (x, y).

        Returns:
            ``[N, C, h, w]`` aligned features.
        """
        head = self.conv_offset(condition)  # [N, 3*G*9, h, w]
        n_offsets = head.shape[1] * 2 // 3
        offset = self.max_residue_magnitude * torch.tanh(head[:, :n_offsets])
        # parity: propainter.py:57 — deform offsets are (dy, dx) pairs, so the flow is flipped.
        offset = offset + flow.flip(1).repeat(1, n_offsets // 2, 1, 1)
        mask = torch.sigmoid(head[:, n_offsets:])
        return self.deform_conv(x, offset, mask)


def _refine_block(channels: int) -> nn.Sequential:
    """``[N, 2C+2, h, w]`` -> ``[N, C, h, w]`` (the ``backbone.*`` and ``fuse`` layout)."""
    return nn.Sequential(
        nn.Conv2d(2 * channels + 2, channels, 3, 1, 1),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Conv2d(channels, channels, 3, 1, 1),
    )


class FeaturePropagation(nn.Module):
    """Learnable bidirectional propagation (``deform_align``, ``backbone``, ``fuse`` keys).

    Args:
        channels: feature channels.
        deform_groups: offset groups of the alignment.
        max_residue_magnitude: bound of the learned offset residue (pixels).
    """

    def __init__(self, channels: int = 128, *, deform_groups: int = 16, max_residue_magnitude: float = 3.0) -> None:
        super().__init__()
        self.deform_align = nn.ModuleDict({
            name: DeformableAlignment(channels, deform_groups=deform_groups,
                                      max_residue_magnitude=max_residue_magnitude)
            for name in PASSES})
        self.backbone = nn.ModuleDict({name: _refine_block(channels) for name in PASSES})
        self.fuse = _refine_block(channels)

    def _propagate(self, name: str, feats: list[Tensor], flows: Tensor, valid: Tensor, masks: Tensor,
                   order: range, flow_index: int, interpolation: str) -> list[Tensor]:
        """One pass over ``order``; step ``i`` aligns the previous result with ``flows[:, idx+flow_index]``."""
        out: list[Tensor] = [feats[0]] * len(feats)
        feat_prop = feats[order[0]]
        for step, idx in enumerate(order):
            current, mask = feats[idx], masks[:, idx]
            if step > 0:
                flow = flows[:, idx + flow_index]
                warped = flow_warp(feat_prop, flow, interpolation)
                condition = torch.cat([current, warped, flow, valid[:, idx + flow_index], mask], dim=1)
                feat_prop = self.deform_align[name](feat_prop, condition, flow)
            # parity: propainter.py:157-160 — the first frame of a pass is refined as well.
            feat_prop = feat_prop + self.backbone[name](torch.cat([current, feat_prop, mask], dim=1))
            out[idx] = feat_prop
        return out

    def forward(self, x: Tensor, flows_forward: Tensor, flows_backward: Tensor, masks: Tensor,
                interpolation: Literal["bilinear", "nearest"] = "bilinear") -> Tensor:
        """Propagate features backward then forward in time and fuse.

        Args:
            x: ``[B, L, C, h, w]`` local-frame features.
            flows_forward: ``[B, L-1, 2, h, w]``, ``[:, t]`` = flow t -> t+1 (in feature pixels).
            flows_backward: ``[B, L-1, 2, h, w]``, ``[:, t]`` = flow t+1 -> t.
            masks: ``[B, L, 2, h, w]`` input mask and mask left after image propagation.
            interpolation: how propagated features are warped for the offset head.

        Returns:
            ``[B, L, C, h, w]`` fused features, ``x`` added.
        """
        batch, frames, channels, height, width = x.shape
        valid_b, valid_f = bidirectional_consistency(flows_forward, flows_backward)
        feats = list(x.unbind(1))
        # Backward pass: frame t receives frame t+1's features through flow t -> t+1.
        backward = self._propagate("backward_1", feats, flows_forward, valid_b, masks,
                                   range(frames - 1, -1, -1), 0, interpolation)
        # Forward pass over the backward results: frame t receives t-1 through flow t -> t-1.
        forward = self._propagate("forward_1", backward, flows_backward, valid_f, masks, range(frames), -1,
                                   interpolation)
        stacked = torch.cat([torch.stack(backward, 1), torch.stack(forward, 1), masks], dim=2)  # [B, L, 2C+2, h, w]
        fused = self.fuse(stacked.view(batch * frames, -1, height, width))  # [B*L, C, h, w]
        return fused.view(batch, frames, channels, height, width) + x

