"""RAFT's recurrent update: motion encoder, separable ConvGRU, flow head, upsampling mask.

Attribute names mirror ``RAFT/update.py:BasicUpdateBlock`` (they are the checkpoint keys).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# parity: RAFT/update.py:131 "scale mask to balance gradients" - the mask logits are x0.25
UPSAMPLE_MASK_SCALE = 0.25


class MotionEncoder(nn.Module):
    """Mixes the correlation look-up and the current flow into 128 motion channels.

    Args:
        corr_channels: Channels of a correlation look-up (324 for 4 levels, radius 4).
        out_channels: Output channels including the 2 flow channels passed through (128).
    """

    def __init__(self, *, corr_channels: int = 324, out_channels: int = 128) -> None:
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 256, 1, padding=0)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, out_channels - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        """``flow [B, 2, h, w]``, ``corr [B, corr_channels, h, w]`` -> ``[B, out_channels, h, w]``."""
        cor = F.relu(self.convc2(F.relu(self.convc1(corr))))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class SepConvGRU(nn.Module):
    """A ConvGRU applied twice: once with 1x5 kernels (horizontal), then with 5x1 (vertical).

    Args:
        hidden_dim: Channels of the hidden state.
        input_dim: Channels of the input (context + motion features).
    """

    def __init__(self, *, hidden_dim: int = 128, input_dim: int = 256) -> None:
        super().__init__()
        both = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))

    @staticmethod
    def _gru_step(h: torch.Tensor, x: torch.Tensor, convz: nn.Conv2d, convr: nn.Conv2d,
                  convq: nn.Conv2d) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``h [B, hidden_dim, h, w]``, ``x [B, input_dim, h, w]`` -> new ``h``."""
        h = self._gru_step(h, x, self.convz1, self.convr1, self.convq1)
        return self._gru_step(h, x, self.convz2, self.convr2, self.convq2)


class FlowHead(nn.Module):
    """Two 3x3 convolutions from the hidden state to a flow update ``[B, 2, h, w]``."""

    def __init__(self, *, in_channels: int = 128, hidden_channels: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_channels, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """One refinement step: new hidden state and flow update, plus the upsampling weights.

    Args:
        corr_channels: Channels of a correlation look-up.
        hidden_dim: GRU hidden channels.
        context_dim: Context-feature channels.
        upsample_factor: Flow-grid to image ratio (8); the mask has ``9 * factor^2`` channels.
    """

    def __init__(self, *, corr_channels: int = 324, hidden_dim: int = 128, context_dim: int = 128,
                 upsample_factor: int = 8) -> None:
        super().__init__()
        motion_dim = 128
        self.encoder = MotionEncoder(corr_channels=corr_channels, out_channels=motion_dim)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=context_dim + motion_dim)
        self.flow_head = FlowHead(in_channels=hidden_dim, hidden_channels=256)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 9 * upsample_factor**2, 1, padding=0),
        )

    def forward(self, hidden: torch.Tensor, context: torch.Tensor, corr: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance the GRU one step.

        Args:
            hidden: ``[B, hidden_dim, h, w]`` GRU state.
            context: ``[B, context_dim, h, w]`` context features (fixed over iterations).
            corr: ``[B, corr_channels, h, w]`` correlation look-up at the current flow.
            flow: ``[B, 2, h, w]`` current flow on the 1/8 grid.

        Returns:
            ``(hidden, delta_flow)``: the new state ``[B, hidden_dim, h, w]`` and the flow
            update ``[B, 2, h, w]``.
        """
        motion = self.encoder(flow, corr)
        hidden = self.gru(hidden, torch.cat([context, motion], dim=1))
        return hidden, self.flow_head(hidden)

    def upsample_weights(self, hidden: torch.Tensor) -> torch.Tensor:
        """Convex-upsampling logits ``[B, 9 * factor^2, h, w]`` from a hidden state.

        The official block computes these every iteration; only the last iteration's are used
        in test mode, so we compute them once (same numbers).
        """
        return UPSAMPLE_MASK_SCALE * self.mask(hidden)
