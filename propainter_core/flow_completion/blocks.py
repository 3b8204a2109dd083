"""Convolution blocks of the flow-completion encoder, decoder and edge head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# parity: model/recurrent_flow_completion.py:141-147. The temporal conv of each pseudo-3D block
# has kernel 3 and dilation 2 over time (padding 2 keeps T).
TEMPORAL_KERNEL = 3
TEMPORAL_DILATION = 2


class PseudoConv3dBlock(nn.Module):
    """A spatial ``1 x k x k`` conv, LeakyReLU, then a dilated temporal ``3 x 1 x 1`` conv.

    Args:
        in_channels: input width.
        out_channels: output width.
        kernel_size: spatial kernel ``k``.
        stride: spatial stride.
        padding: spatial padding.
        negative_slope: slope of the LeakyReLU between the two convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
                 *, negative_slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=(1, kernel_size, kernel_size),
                      stride=(1, stride, stride), padding=(0, padding, padding)),
            nn.LeakyReLU(negative_slope, inplace=True),
        )
        self.conv2 = nn.Sequential(
            nn.Conv3d(out_channels, out_channels, kernel_size=(TEMPORAL_KERNEL, 1, 1),
                      padding=(TEMPORAL_DILATION, 0, 0), dilation=(TEMPORAL_DILATION, 1, 1)),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C_in, T, H, W]`` -> ``[B, C_out, T, H / stride, W / stride]``."""
        # parity: use_residual is 0 in every official block, so there is no residual branch.
        return self.conv2(self.conv1(x))


class FlowEdgeHead(nn.Module):
    """Predict flow-edge probabilities from a flow field (a training-time auxiliary head).

    Args:
        in_channels: flow channels (2).
        out_channels: edge channels (1).
        mid_channels: hidden width.
    """

    # parity: model/recurrent_flow_completion.py:163-185 (slopes 0.2 inside, 0.01 after the skip).
    INNER_SLOPE = 0.2
    SKIP_SLOPE = 0.01

    def __init__(self, in_channels: int = 2, out_channels: int = 1, mid_channels: int = 16) -> None:
        super().__init__()
        self.projection = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 3, 1, 1),
                                        nn.LeakyReLU(self.INNER_SLOPE, inplace=True))
        self.mid_layer_1 = nn.Sequential(nn.Conv2d(mid_channels, mid_channels, 3, 1, 1),
                                         nn.LeakyReLU(self.INNER_SLOPE, inplace=True))
        self.mid_layer_2 = nn.Sequential(nn.Conv2d(mid_channels, mid_channels, 3, 1, 1))
        self.out_layer = nn.Conv2d(mid_channels, out_channels, 1, 1, 0)

    def forward(self, flow: Tensor) -> Tensor:
        """``[N, 2, H, W]`` flow -> ``[N, 1, H, W]`` edge probability."""
        projected = self.projection(flow)
        edge = self.mid_layer_2(self.mid_layer_1(projected))
        edge = F.leaky_relu(projected + edge, self.SKIP_SLOPE)
        return torch.sigmoid(self.out_layer(edge))
