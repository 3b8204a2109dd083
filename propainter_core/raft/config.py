"""Configuration of the RAFT optical-flow network (the full ``raft-things`` model)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RaftConfig:
    """Sizes of the full RAFT model that ProPainter ships as ``raft-things.pth``.

    The defaults are the official values (``RAFT/raft.py:RAFT.__init__`` with ``small=False``,
    ``mixed_precision=False``, ``alternate_corr=False``); the checkpoint only fits these.

    Attributes:
        feature_dim: Channels of the matching features ``fnet`` produces.
        hidden_dim: Channels of the GRU hidden state (first part of the context features).
        context_dim: Channels of the context input (second part of the context features).
        corr_levels: Levels of the correlation pyramid (each halves the second image's grid).
        corr_radius: Look-up radius in pixels of each level; a ``(2r+1)^2`` window is sampled.
        encoder_widths: Channels of the encoders' stem and of their three residual stages.
        upsample_factor: Ratio between image and flow grid (the encoders downsample by 8).
        min_size: Smallest image height and width accepted. Below 128 the coarsest pyramid
            level is one pixel wide and the official sampler divides by zero (NaN flows).
    """

    feature_dim: int = 256
    hidden_dim: int = 128
    context_dim: int = 128
    corr_levels: int = 4
    corr_radius: int = 4
    encoder_widths: tuple[int, int, int] = (64, 96, 128)
    upsample_factor: int = 8
    min_size: int = 128

    @property
    def corr_channels(self) -> int:
        """Channels of one correlation look-up: ``levels * (2 * radius + 1)^2`` (324)."""
        return self.corr_levels * (2 * self.corr_radius + 1) ** 2
