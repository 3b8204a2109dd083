"""Temporal sparse window transformer: window attention with rolled and pooled keys, fusion FFN.

Tokens are ``[B, T, rows, cols, C]``. Windows that contain hole tokens in any local frame
("masked" windows) attend across frames — to their own tokens, their rolled neighbours and the
pooled global tokens of every ``t_dilation``-th frame. The other windows attend only within
themselves, frame by frame.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.windows import (gather_window_tokens, merge_windows, pad_to_windows, rolled_neighbour_indices,
                           split_windows, window_key_positions)
from .soft_split import token_grid_size


class SparseWindowAttention(nn.Module):
    """Sparse window attention (keys ``key``/``query``/``value``/``proj``/``pool_layer`` and the
    ``valid_ind_rolled`` buffer mirror the official checkpoint).

    Args:
        dim: token width.
        n_head: heads.
        window_size: ``(wh, ww)`` tokens per window.
        pool_size: depthwise pooling kernel and stride of the global tokens.
    """

    def __init__(self, dim: int, n_head: int, window_size: tuple[int, int], pool_size: tuple[int, int]) -> None:
        super().__init__()
        self.n_head = n_head
        self.window_size = window_size
        # parity: sparse_transformer.py:139 — the rolls reach half a window (rounded up).
        self.expand_size = tuple((s + 1) // 2 for s in window_size)
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.pool_layer = nn.Conv2d(dim, dim, kernel_size=pool_size, stride=pool_size, groups=dim)
        # Part of the official checkpoint (persistent): which rolled tokens are neighbours.
        self.register_buffer("valid_ind_rolled", rolled_neighbour_indices(window_size, self.expand_size))

    def _masked_windows(self, local_mask: Tensor) -> Tensor:
        """``[B, L, H, W, 1]`` padded token mask -> ``[B, nW]`` bool: hole in any local frame."""
        batch, frames, height, width, _ = local_mask.shape
        pooled = F.max_pool2d(local_mask.view(batch * frames, height, width), self.window_size)
        # parity: sparse_transformer.py:241-243 (max-pool per window, summed over local frames).
        return pooled.view(batch, frames, -1).sum(dim=1) != 0

    def _pooled_tokens(self, x: Tensor) -> Tensor:
        """``[B, T, H, W, C]`` -> pooled tokens ``[B, T, P, C]``."""
        batch, frames, height, width, channels = x.shape
        pooled = self.pool_layer(x.view(batch * frames, height, width, channels).permute(0, 3, 1, 2))
        return pooled.permute(0, 2, 3, 1).reshape(batch, frames, -1, channels)  # [B, T, P, C]

    def _split_pooled(self, pooled: Tensor, n_windows: int) -> Tensor:
        """``[T, P, C]`` -> ``[nW, heads, T, P, c]`` (the same tokens for every window)."""
        frames, count, channels = pooled.shape
        per_head = pooled.view(frames, count, self.n_head, channels // self.n_head).permute(2, 0, 1, 3)
        return per_head.unsqueeze(0).expand(n_windows, -1, -1, -1, -1)

    @staticmethod
    def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        # parity: sparse_transformer.py:263-266 — scale after the product, then softmax. In place:
        # the same values without a second copy of the (large) attention matrix.
        att = (q @ k.transpose(-2, -1)).mul_(1.0 / math.sqrt(q.size(-1)))
        return F.softmax(att, dim=-1) @ v

    def forward(self, x: Tensor, local_mask: Tensor, key_frames: Tensor) -> Tensor:
        """Attend within and across windows.

        Args:
            x: ``[B, T, H, W, C]`` normalised tokens.
            local_mask: ``[B, L, H, W, 1]`` hole tokens of the ``L`` local frames.
            key_frames: int64 ``[Tk]`` frames whose tokens masked windows use as keys.

        Returns:
            ``[B, T, H, W, C]``.
        """
        batch, frames, height, width, channels = x.shape
        wh, ww = self.window_size
        x = pad_to_windows(x, self.window_size)
        local_mask = pad_to_windows(local_mask, self.window_size)
        grid = (x.shape[2] // wh, x.shape[3] // ww)
        n_windows = grid[0] * grid[1]
        positions = window_key_positions(grid, self.window_size, self.expand_size, self.valid_ind_rolled)
        positions = positions.to(x.device)  # [nW, wh*ww + R]
        own_positions = positions[:, : wh * ww]

        win_q = split_windows(self.query(x), self.window_size, self.n_head)  # [B, nW, heads, T, N, c]
        keys = self.key(x).flatten(2, 3)  # [B, T, H*W, C]
        values = self.value(x).flatten(2, 3)
        pooled = self._pooled_tokens(x)
        pooled_k, pooled_v = self.key(pooled), self.value(pooled)  # [B, T, P, C]
        masked = self._masked_windows(local_mask)  # [B, nW]

        out = torch.empty_like(win_q)
        for i in range(batch):
            masked_ids = masked[i].nonzero().view(-1)
            if len(masked_ids) > 0:
                out[i, masked_ids] = self._attend_masked(
                    win_q[i, masked_ids], keys[i, key_frames], values[i, key_frames], positions[masked_ids],
                    pooled_k[i, key_frames], pooled_v[i, key_frames])
            free_ids = (~masked[i]).nonzero().view(-1)
            if len(free_ids) > 0:
                # Unmasked windows: every frame attends only to its own window in itself.
                k = gather_window_tokens(keys[i : i + 1], own_positions[free_ids], self.n_head)[0]
                v = gather_window_tokens(values[i : i + 1], own_positions[free_ids], self.n_head)[0]
                out[i, free_ids] = self._attend(win_q[i, free_ids], k, v)

        out = merge_windows(out, grid, self.window_size)[:, :, :height, :width]  # [B, T, H, W, C]
        return self.proj(out)

    def _attend_masked(self, q: Tensor, keys: Tensor, values: Tensor, positions: Tensor, pooled_k: Tensor,
                       pooled_v: Tensor) -> Tensor:
        """Masked windows of one batch element.

        Args:
            q: ``[M, heads, T, N, c]`` queries of the ``M`` masked windows (all frames).
            keys, values: ``[Tk, H*W, C]`` key/value maps of the key frames.
            positions: ``[M, N + R]`` own + rolled token positions of these windows.
            pooled_k, pooled_v: ``[Tk, P, C]`` pooled keys/values of the key frames.

        Returns:
            ``[M, heads, T, N, c]``.
        """
        count, heads, frames, tokens, head_ch = q.shape
        # parity: sparse_transformer.py:214-229, 252-260 — per key frame: own, rolled, pooled tokens.
        k = torch.cat((gather_window_tokens(keys[None], positions, heads)[0],
                       self._split_pooled(pooled_k, count)), dim=3)  # [M, heads, Tk, N + R + P, c]
        v = torch.cat((gather_window_tokens(values[None], positions, heads)[0],
                       self._split_pooled(pooled_v, count)), dim=3)
        n_keys = k.shape[2] * k.shape[3]  # explicit: no key frames (one-frame clips) gives 0 keys
        y = self._attend(q.reshape(count, heads, frames * tokens, head_ch),
                         k.reshape(count, heads, n_keys, head_ch), v.reshape(count, heads, n_keys, head_ch))
        return y.view(count, heads, frames, tokens, head_ch)


#: The feed-forward's hidden tokens (``mlp_hidden`` floats per token) are made in groups of frames
#: below this size: glibc maps buffers above its largest mmap threshold (32 MiB on 64-bit Linux)
#: afresh at every allocation, a page fault per 4 KiB, and reuses smaller freed ones.
FFN_BUFFER_BYTES = 32 * 2**20


class FusionFeedForward(nn.Module):
    """Feed-forward whose hidden tokens are folded to a map, averaged over overlaps, unfolded.

    Args:
        dim: token width.
        hidden_dim: hidden width, ``C_f * k*k`` for a soft-split kernel ``k x k``.
        kernel, stride, padding: the soft-split geometry the tokens came from.
    """

    def __init__(self, dim: int, hidden_dim: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Linear(dim, hidden_dim))
        self.fc2 = nn.Sequential(nn.GELU(), nn.Linear(hidden_dim, dim))
        self.fold_params = {"kernel_size": kernel, "stride": stride, "padding": padding}

    def forward(self, x: Tensor, output_size: tuple[int, int]) -> Tensor:
        """``[B, T, rows, cols, C]`` -> same shape; ``output_size`` is the folded map ``(h, w)``.

        Frames are independent here (tokens per token, fold and unfold per frame), so they run
        in groups of even size whose hidden tokens stay under :data:`FFN_BUFFER_BYTES`: the same
        numbers (bit-identical, measured), with buffers that glibc reuses instead of mapping
        afresh (one window of 12 frames at 432x240, 1 thread: about 5 % less CPU time, page
        faults 1.4-1.8 M -> 0.7-0.9 M; issue 14, session 4).
        """
        batch, frames, rows, cols, _ = x.shape
        per_frame = batch * rows * cols * self.fc1[0].out_features * x.element_size()
        groups = -(-frames // max(1, FFN_BUFFER_BYTES // max(1, per_frame)))
        if groups <= 1:
            return self._forward(x, output_size)
        return torch.cat([self._forward(part, output_size) for part in x.split(-(-frames // groups), dim=1)],
                         dim=1)

    def _forward(self, x: Tensor, output_size: tuple[int, int]) -> Tensor:
        batch, frames, rows, cols, channels = x.shape
        kernel_area = self.fold_params["kernel_size"][0] * self.fold_params["kernel_size"][1]
        x = self.fc1(x).view(batch * frames, rows * cols, -1).transpose(1, 2)  # [B*T, hidden, L]
        # How many patches cover each pixel (the same for every frame).
        coverage = F.fold(x.new_ones(1, kernel_area, rows * cols), output_size, **self.fold_params)
        folded = F.fold(x, output_size, **self.fold_params) / coverage  # [B*T, hidden/(k*k), h, w]
        x = F.unfold(folded, **self.fold_params).transpose(1, 2).contiguous()  # [B*T, L, hidden]
        # parity: sparse_transformer.py:101-103 (GELU without tanh approximation, then fc2).
        return self.fc2(x).view(batch, frames, rows, cols, channels)


class TemporalSparseTransformer(nn.Module):
    """One pre-norm block: sparse window attention and fusion feed-forward, both residual."""

    def __init__(self, dim: int, n_head: int, window_size: tuple[int, int], pool_size: tuple[int, int],
                 mlp_hidden: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.attention = SparseWindowAttention(dim, n_head, window_size, pool_size)
        self.norm1 = nn.LayerNorm(dim)  # parity: eps 1e-5, sparse_transformer.py:283
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FusionFeedForward(dim, mlp_hidden, kernel, stride, padding)

    def forward(self, x: Tensor, output_size: tuple[int, int], local_mask: Tensor, key_frames: Tensor) -> Tensor:
        """``[B, T, rows, cols, C]`` -> same shape (see :class:`SparseWindowAttention`)."""
        x = x + self.attention(self.norm1(x), local_mask, key_frames)
        return x + self.mlp(self.norm2(x), output_size)


class TemporalSparseTransformerBlock(nn.Module):
    """The stack of transformer blocks (``transformer.N`` keys); block ``i`` uses key frames
    ``i % t_dilation, i % t_dilation + t_dilation, ...``."""

    def __init__(self, *, dim: int, n_head: int, window_size: tuple[int, int], pool_size: tuple[int, int],
                 depths: int, mlp_hidden: int, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.depths = depths
        self.transformer = nn.Sequential(*[
            TemporalSparseTransformer(dim, n_head, window_size, pool_size, mlp_hidden, kernel, stride, padding)
            for _ in range(depths)])

    def forward(self, x: Tensor, output_size: tuple[int, int], local_mask: Tensor, t_dilation: int = 2) -> Tensor:
        """Run all blocks.

        Args:
            x: ``[B, T, rows, cols, C]`` tokens of all frames (local first, then references).
            output_size: ``(h, w)`` of the feature map the tokens were cut from.
            local_mask: ``[B, L, rows, cols, 1]`` hole tokens of the local frames.
            t_dilation: temporal stride of the key frames; must divide the block count. With fewer
                frames than ``t_dilation`` some blocks have no key frames: their masked windows
                then output zeros, as the original's empty softmax does.

        Returns:
            ``[B, T, rows, cols, C]``.
        """
        frames = x.shape[1]
        if t_dilation < 1 or self.depths % t_dilation:
            raise ValueError(f"t_dilation={t_dilation} must be a positive divisor of the {self.depths} blocks")
        # parity: sparse_transformer.py:336-340.
        key_frames = [torch.arange(start, frames, t_dilation, device=x.device) for start in range(t_dilation)]
        for index, block in enumerate(self.transformer):
            x = block(x, output_size, local_mask, key_frames[index % t_dilation])
        return x


def check_token_grid(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> tuple[int, int]:
    """Token grid of a feature map; raises when the map is too small for one patch."""
    rows, cols = token_grid_size(size, kernel, stride, padding)
    if rows < 1 or cols < 1:
        raise ValueError(f"feature map {size} is too small for {kernel} patches")
    return rows, cols
