"""RAFT's recurrent update: motion encoder, separable ConvGRU, flow head, upsampling mask.

Attribute names mirror ``RAFT/update.py:BasicUpdateBlock`` (they are the checkpoint keys).
"""
from __future__ import annotations

from typing import NamedTuple

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
        cor = self.convc2(self.convc1(corr).relu_()).relu_()
        flo = self.convf2(self.convf1(flow).relu_()).relu_()
        out = self.conv(torch.cat([cor, flo], dim=1)).relu_()
        return torch.cat([out, flow], dim=1)


class SepConvGRU(nn.Module):
    """A ConvGRU applied twice: once with 1x5 kernels (horizontal), then with 5x1 (vertical).

    The gate convolutions read ``cat([h, context, motion])``. :meth:`context_terms` and
    :meth:`step` compute the same thing with less work: the context share of every gate
    (constant over the refinement) once per refinement, the z and r gates as one convolution,
    and no concatenation with the context. The split and fused weights are derived from the
    checkpoint's ``conv{z,r,q}{1,2}`` parameters (which stay as they are, so the official keys
    load) and rebuilt only when those parameters change (load, ``.to()``). The results differ
    from :meth:`forward` by float summation order only (about 3e-7 relative).

    Args:
        hidden_dim: Channels of the hidden state.
        input_dim: Channels of the input (context + motion features).
        context_dim: Leading input channels that are the (fixed) context; the rest are motion.
    """

    def __init__(self, *, hidden_dim: int = 128, input_dim: int = 256, context_dim: int = 128) -> None:
        super().__init__()
        both = hidden_dim + input_dim
        self.hidden_dim = hidden_dim
        self.context_dim = context_dim
        self.convz1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(both, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(both, hidden_dim, (5, 1), padding=(2, 0))
        self._derived: tuple[tuple, list[_PassWeights]] | None = None

    @staticmethod
    def _gru_step(h: torch.Tensor, x: torch.Tensor, convz: nn.Conv2d, convr: nn.Conv2d,
                  convq: nn.Conv2d) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``h [B, hidden_dim, h, w]``, ``x [B, input_dim, h, w]`` -> new ``h`` (the official form)."""
        h = self._gru_step(h, x, self.convz1, self.convr1, self.convq1)
        return self._gru_step(h, x, self.convz2, self.convr2, self.convq2)

    def _pass_weights(self) -> list[_PassWeights]:
        """Split and fused weights of both passes, rebuilt when a parameter changed."""
        convs = ((self.convz1, self.convr1, self.convq1), (self.convz2, self.convr2, self.convq2))
        params = [p for trio in convs for conv in trio for p in (conv.weight, conv.bias)]
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        if self._derived is None or self._derived[0] != key:
            with torch.no_grad():
                self._derived = (key, [_split_pass(*trio, self.hidden_dim, self.context_dim)
                                       for trio in convs])
        return self._derived[1]

    def context_terms(self, context: torch.Tensor) -> list[ContextTerms]:
        """The context's share of the gates (with their biases), once per refinement.

        Args:
            context: ``[B, context_dim, h, w]``.

        Returns:
            Per pass, the pass's split weights and the context's share of the z/r gates
            ``[B, 2*hidden_dim, h, w]`` and of the q gate ``[B, hidden_dim, h, w]``.
        """
        return [ContextTerms(w, F.conv2d(context, w.zr_context, w.zr_bias, padding=w.padding),
                             F.conv2d(context, w.q_context, w.q_bias, padding=w.padding))
                for w in self._pass_weights()]

    def step(self, h: torch.Tensor, motion: torch.Tensor, terms: list[ContextTerms]) -> torch.Tensor:
        """One update, the same as ``forward(h, cat([context, motion]))``.

        Args:
            h: ``[B, hidden_dim, h, w]`` state.
            motion: ``[B, input_dim - context_dim, h, w]`` motion features.
            terms: :meth:`context_terms` of the context.
        """
        hd = self.hidden_dim
        hm = torch.cat([h, motion], dim=1)  # [B, hidden + motion, h, w]; its first part is rewritten below
        for index, (w, zr_context, q_context) in enumerate(terms):
            if index:
                hm[:, :hd].copy_(h)
            zr = F.conv2d(hm, w.zr_main, None, padding=w.padding).add_(zr_context).sigmoid_()
            z, r = zr[:, :hd], zr[:, hd:]
            torch.mul(r, h, out=hm[:, :hd])  # [r * h, motion]
            q = F.conv2d(hm, w.q_main, None, padding=w.padding).add_(q_context).tanh_()
            h = torch.addcmul(h, z, q.sub_(h))  # (1 - z) * h + z * q
        return h


class _PassWeights(NamedTuple):
    """One GRU pass's weights split by input: ``main`` reads ``[h, motion]``, ``context`` the context."""

    zr_main: torch.Tensor  # [2*hd, hd + motion, kh, kw]
    zr_context: torch.Tensor  # [2*hd, context, kh, kw]
    zr_bias: torch.Tensor  # [2*hd]
    q_main: torch.Tensor  # [hd, hd + motion, kh, kw]
    q_context: torch.Tensor  # [hd, context, kh, kw]
    q_bias: torch.Tensor  # [hd]
    padding: tuple[int, int]


class ContextTerms(NamedTuple):
    """One GRU pass's split weights and the context's (fixed) share of its gates."""

    weights: _PassWeights
    zr: torch.Tensor  # [B, 2*hd, h, w], biases included
    q: torch.Tensor  # [B, hd, h, w], bias included


def _split_pass(convz: nn.Conv2d, convr: nn.Conv2d, convq: nn.Conv2d, hidden_dim: int,
                context_dim: int) -> _PassWeights:
    """Input channels are ``[h (hidden_dim), context (context_dim), motion]`` (the official order)."""
    cut = hidden_dim + context_dim

    def main(weight: torch.Tensor) -> torch.Tensor:
        return torch.cat([weight[:, :hidden_dim], weight[:, cut:]], dim=1).contiguous()

    zr = torch.cat([convz.weight, convr.weight])  # [2*hd, in, kh, kw]: z outputs, then r
    return _PassWeights(main(zr), zr[:, hidden_dim:cut].contiguous(), torch.cat([convz.bias, convr.bias]),
                        main(convq.weight), convq.weight[:, hidden_dim:cut].contiguous(),
                        convq.bias.clone(), tuple(convz.padding))


class FlowHead(nn.Module):
    """Two 3x3 convolutions from the hidden state to a flow update ``[B, 2, h, w]``."""

    def __init__(self, *, in_channels: int = 128, hidden_channels: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_channels, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x).relu_())


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
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=context_dim + motion_dim,
                              context_dim=context_dim)
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

    def context_terms(self, context: torch.Tensor) -> list[ContextTerms]:
        """What :meth:`step` needs of the context, computed once per refinement."""
        return self.gru.context_terms(context)

    def step(self, hidden: torch.Tensor, context_terms: list[ContextTerms],
             corr: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` with the context's share precomputed (:meth:`context_terms`)."""
        motion = self.encoder(flow, corr)
        hidden = self.gru.step(hidden, motion, context_terms)
        return hidden, self.flow_head(hidden)

    def upsample_weights(self, hidden: torch.Tensor) -> torch.Tensor:
        """Convex-upsampling logits ``[B, 9 * factor^2, h, w]`` from a hidden state.

        The official block computes these every iteration; only the last iteration's are used
        in test mode, so we compute them once (same numbers).
        """
        return UPSAMPLE_MASK_SCALE * self.mask(hidden)
