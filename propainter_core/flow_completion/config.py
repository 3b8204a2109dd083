"""Configuration of the recurrent flow-completion network, with the official defaults."""
from __future__ import annotations

from dataclasses import dataclass

# parity: model/recurrent_flow_completion.py:233-298 (RecurrentFlowCompleteNet.__init__) and
# :39-57 (SecondOrderDeformableAlignment); the values below are what it hard-codes.
OFFICIAL_CHANNELS = (32, 64, 128)
OFFICIAL_DEFORM_GROUPS = 16
OFFICIAL_MAX_RESIDUE_MAGNITUDE = 5.0
OFFICIAL_ENCODER_SLOPE = 0.2
OFFICIAL_PROPAGATION_SLOPE = 0.1
OFFICIAL_EDGE_CHANNELS = 16
# The three stride-2 stages: height and width must be multiples of this.
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class FlowCompletionConfig:
    """Widths and constants of :class:`RecurrentFlowCompletion`.

    The defaults build the network of ``recurrent_flow_completion.pth``; smaller values are for
    fast tests only (no checkpoint fits them).

    Attributes:
        channels: feature widths at 1/2, 1/4 and 1/8 resolution.
        deform_groups: offset groups of each second-order deformable alignment.
        max_residue_magnitude: bound (pixels) of the learned offsets, ``m * tanh(raw)``.
        encoder_slope: LeakyReLU slope of the encoder, mid-level and decoder convolutions.
        propagation_slope: LeakyReLU slope inside the propagation backbones and offset heads.
        edge_channels: width of the edge head (used only by :meth:`RecurrentFlowCompletion.edges`).
    """

    channels: tuple[int, int, int] = OFFICIAL_CHANNELS
    deform_groups: int = OFFICIAL_DEFORM_GROUPS
    max_residue_magnitude: float = OFFICIAL_MAX_RESIDUE_MAGNITUDE
    encoder_slope: float = OFFICIAL_ENCODER_SLOPE
    propagation_slope: float = OFFICIAL_PROPAGATION_SLOPE
    edge_channels: int = OFFICIAL_EDGE_CHANNELS

    def __post_init__(self) -> None:
        if len(self.channels) != 3 or any(int(c) != c or c < 1 for c in self.channels):
            raise ValueError(f"FlowCompletionConfig.channels must be three positive ints, got {self.channels}")
        if self.deform_groups < 1 or (2 * self.channels[2]) % self.deform_groups != 0:
            raise ValueError(f"FlowCompletionConfig.deform_groups={self.deform_groups} must divide the "
                             f"alignment input width 2 * {self.channels[2]}")
        if self.max_residue_magnitude <= 0:
            raise ValueError("FlowCompletionConfig.max_residue_magnitude must be positive, "
                             f"got {self.max_residue_magnitude}")
        if self.edge_channels < 1:
            raise ValueError(f"FlowCompletionConfig.edge_channels must be positive, got {self.edge_channels}")
