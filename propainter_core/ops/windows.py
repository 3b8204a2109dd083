"""Window split/merge for the sparse window transformer, and its rolled-neighbour index tables.

Token maps are ``[B, T, H, W, C]`` (channels last). A window of ``wh x ww`` tokens attends to its
own tokens, to the tokens of the surrounding windows that four rolled copies of the map bring
into it (the "rolled" keys), and to pooled tokens. Instead of rolling the whole map four times
(the original's way), we gather the same tokens through a precomputed flat index table: the
same values in the same order, without four full copies of the keys and values.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# parity: model/modules/sparse_transformer.py:190-193 concatenates the rolls in this order.
_ROLL_DIRECTIONS = ((-1, -1), (-1, 1), (1, -1), (1, 1))  # top-left, top-right, bottom-left, bottom-right


def _check_tokens(x: Tensor, name: str) -> None:
    if x.ndim != 5:
        raise ValueError(f"{name} must have shape [B, T, H, W, C], got {tuple(x.shape)}")


def windows_grid(height: int, width: int, window: tuple[int, int]) -> tuple[int, int]:
    """Number of windows ``(rows, cols)`` that cover a ``height x width`` map (ceil division)."""
    return math.ceil(height / window[0]), math.ceil(width / window[1])


def pad_to_windows(x: Tensor, window: tuple[int, int]) -> Tensor:
    """Zero-pad ``[B, T, H, W, C]`` at the bottom and right to whole windows.

    Returns:
        ``[B, T, ceil(H/wh)*wh, ceil(W/ww)*ww, C]``; ``x`` itself when no padding is needed.
    """
    _check_tokens(x, "pad_to_windows: x")
    height, width = x.shape[2:4]
    rows, cols = windows_grid(height, width, window)
    pad_b, pad_r = rows * window[0] - height, cols * window[1] - width
    if pad_b == 0 and pad_r == 0:
        return x
    # parity: sparse_transformer.py:166-168 pads bottom/right with zeros (before the projections).
    return F.pad(x, (0, 0, 0, pad_r, 0, pad_b))


def split_windows(x: Tensor, window: tuple[int, int], n_head: int) -> Tensor:
    """Cut a padded token map into per-head windows.

    Args:
        x: ``[B, T, H, W, C]`` with ``H``, ``W`` multiples of the window and ``C`` of ``n_head``.
        window: ``(wh, ww)``.
        n_head: attention heads; channel ``c`` goes to head ``c // (C / n_head)``.

    Returns:
        ``[B, nW, n_head, T, wh*ww, C/n_head]``, windows in row-major order, tokens row-major
        inside each window.
    """
    _check_tokens(x, "split_windows: x")
    batch, frames, height, width, channels = x.shape
    wh, ww = window
    if height % wh or width % ww or channels % n_head:
        raise ValueError(f"split_windows: map {height}x{width}x{channels} is not a whole number of "
                         f"{wh}x{ww} windows with {n_head} heads (pad it first)")
    x = x.view(batch, frames, height // wh, wh, width // ww, ww, n_head, channels // n_head)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # [B, rows, cols, heads, T, wh, ww, c]
    return x.reshape(batch, (height // wh) * (width // ww), n_head, frames, wh * ww, channels // n_head)


def merge_windows(windows: Tensor, grid: tuple[int, int], window: tuple[int, int]) -> Tensor:
    """Inverse of :func:`split_windows`.

    Args:
        windows: ``[B, nW, n_head, T, wh*ww, c]``.
        grid: ``(rows, cols)`` of windows, ``rows * cols == nW``.
        window: ``(wh, ww)``.

    Returns:
        ``[B, T, rows*wh, cols*ww, n_head*c]``.
    """
    batch, n_windows, n_head, frames, _, head_ch = windows.shape
    rows, cols = grid
    wh, ww = window
    if rows * cols != n_windows:
        raise ValueError(f"merge_windows: {n_windows} windows do not form a {rows}x{cols} grid")
    x = windows.view(batch, rows, cols, n_head, frames, wh, ww, head_ch)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # [B, T, rows, wh, cols, ww, heads, c]
    return x.reshape(batch, frames, rows * wh, cols * ww, n_head * head_ch)


def rolled_neighbour_indices(window: tuple[int, int], expand: tuple[int, int]) -> Tensor:
    """Which of the four rolled copies' window tokens are neighbours (not the window itself).

    Rolling the map by ``(-eh, -ew)`` (then ``(-eh, +ew)``, ``(+eh, -ew)``, ``(+eh, +ew)``) brings
    tokens of the adjacent windows into each window; the tokens that are still the window's own
    (a ``(wh-eh) x (ww-ew)`` corner of each rolled copy) are dropped.

    Returns:
        int64 ``[4*wh*ww - 4*(wh-eh)*(ww-ew)]`` indices into the four concatenated copies
        (148 for a 5x9 window with expand 3x5) — the official ``valid_ind_rolled`` buffer.
    """
    wh, ww = window
    eh, ew = expand
    rows = torch.arange(wh).view(wh, 1)
    cols = torch.arange(ww).view(1, ww)
    # parity: sparse_transformer.py:142-150 zeroes [:-eh, :-ew], [:-eh, ew:], [eh:, :-ew], [eh:, ew:].
    own = [
        (rows < wh - eh) & (cols < ww - ew),
        (rows < wh - eh) & (cols >= ew),
        (rows >= eh) & (cols < ww - ew),
        (rows >= eh) & (cols >= ew),
    ]
    keep = torch.stack([~m for m in own]).flatten()
    return keep.nonzero().view(-1)


def window_key_positions(grid: tuple[int, int], window: tuple[int, int], expand: tuple[int, int],
                         rolled_indices: Tensor) -> Tensor:
    """Flat map positions of every window's own tokens followed by its rolled neighbours.

    Args:
        grid: ``(rows, cols)`` windows of the padded map (``H = rows*wh``, ``W = cols*ww``).
        window: ``(wh, ww)``.
        expand: roll distance ``(eh, ew)``.
        rolled_indices: ``[R]`` int64 selection among the four concatenated rolled copies
            (the module's ``valid_ind_rolled`` buffer).

    Returns:
        int64 ``[nW, wh*ww + R]`` indices into the flattened ``H*W`` map: gathering them gives
        exactly the key order of the original (own window, then rolled copies tl, tr, bl, br,
        then the selection).
    """
    rows, cols = grid
    wh, ww = window
    height, width = rows * wh, cols * ww
    win_y = (torch.arange(rows) * wh).view(rows, 1, 1, 1)
    win_x = (torch.arange(cols) * ww).view(1, cols, 1, 1)
    in_y = torch.arange(wh).view(1, 1, wh, 1)
    in_x = torch.arange(ww).view(1, 1, 1, ww)
    y = (win_y + in_y).expand(rows, cols, wh, ww)  # [rows, cols, wh, ww]
    x = (win_x + in_x).expand(rows, cols, wh, ww)
    own = (y * width + x).reshape(rows * cols, wh * ww)
    rolled = []
    for dy, dx in _ROLL_DIRECTIONS:
        # torch.roll(a, shifts=s)[i] == a[(i - s) mod n]; the copy rolled by (dy*eh, dx*ew).
        src_y = (y - dy * expand[0]) % height
        src_x = (x - dx * expand[1]) % width
        rolled.append((src_y * width + src_x).reshape(rows * cols, wh * ww))
    rolled_all = torch.cat(rolled, dim=1)  # [nW, 4*wh*ww]
    return torch.cat((own, rolled_all[:, rolled_indices.to(torch.int64).cpu()]), dim=1)


def gather_window_tokens(x: Tensor, positions: Tensor, n_head: int) -> Tensor:
    """Gather per-window token sets from a flattened map.

    Args:
        x: ``[B, T, H*W, C]``.
        positions: ``[nW, K]`` int64 flat positions (e.g. from :func:`window_key_positions`).
        n_head: heads to split ``C`` into.

    Returns:
        ``[B, nW, n_head, T, K, C/n_head]``.
    """
    batch, frames, _, channels = x.shape
    n_windows, n_keys = positions.shape
    picked = x.index_select(2, positions.reshape(-1).to(x.device))  # [B, T, nW*K, C]
    picked = picked.view(batch, frames, n_windows, n_keys, n_head, channels // n_head)
    return picked.permute(0, 2, 4, 1, 3, 5)  # [B, nW, heads, T, K, c]
