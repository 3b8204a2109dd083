"""Window split/merge and the rolled-neighbour key tables of the sparse window transformer."""
from __future__ import annotations

import pytest
import torch

from parity_weights import load_manifest
from propainter_core.ops.windows import (gather_window_tokens, merge_windows, pad_to_windows, rolled_neighbour_indices,
                                         split_windows, window_key_positions, windows_grid)


def _tokens(b=1, t=2, h=6, w=8, c=4, dtype=torch.float32) -> torch.Tensor:
    return torch.arange(b * t * h * w * c, dtype=dtype).view(b, t, h, w, c)


def test_split_windows_hand_checked_layout():
    x = _tokens(1, 2, 4, 6, 4)  # windows of 2x3 -> 2x2 windows, 2 heads of 2 channels
    win = split_windows(x, (2, 3), n_head=2)
    assert win.shape == (1, 4, 2, 2, 6, 2)
    # window 3 = bottom-right, head 1, frame 1, token 4 = (row 1, col 1) inside -> map (3, 4)
    assert torch.equal(win[0, 3, 1, 1, 4], x[0, 1, 3, 4, 2:4])
    # window 1 = top-right, head 0, frame 0, token 0 -> map (0, 3)
    assert torch.equal(win[0, 1, 0, 0, 0], x[0, 0, 0, 3, 0:2])


@pytest.mark.parametrize("shape, window, heads", [((2, 3, 10, 27, 8), (5, 9), 4), ((1, 1, 3, 5, 3), (1, 5), 3)])
def test_merge_inverts_split(shape, window, heads):
    x = torch.randn(shape)
    grid = windows_grid(shape[2], shape[3], window)
    assert torch.equal(merge_windows(split_windows(x, window, heads), grid, window), x)


def test_split_accepts_non_contiguous_maps():
    x = torch.randn(1, 2, 8, 6, 4).transpose(2, 3)  # [1, 2, 6, 8, 4], not contiguous
    assert not x.is_contiguous()
    assert torch.equal(split_windows(x, (3, 4), 2), split_windows(x.contiguous(), (3, 4), 2))


def test_split_rejects_partial_windows():
    with pytest.raises(ValueError, match="pad it first"):
        split_windows(torch.zeros(1, 1, 7, 9, 4), (5, 9), 4)


def test_pad_to_windows_pads_bottom_right_with_zeros_on_odd_sizes():
    x = torch.ones(1, 2, 11, 14, 3)
    padded = pad_to_windows(x, (5, 9))
    assert padded.shape == (1, 2, 15, 18, 3)
    assert torch.equal(padded[:, :, :11, :14], x) and padded.sum() == x.sum()
    assert pad_to_windows(torch.ones(1, 1, 5, 9, 2), (5, 9)).shape == (1, 1, 5, 9, 2)


def test_rolled_indices_are_the_checkpoint_buffer():
    entries = load_manifest("generator")["entries"]
    buffers = [e for e in entries if e["key"].endswith("valid_ind_rolled")]
    assert len(buffers) == 8
    ours = rolled_neighbour_indices((5, 9), (3, 5))
    assert ours.dtype == torch.int64 and ours.numel() == 148
    for entry in buffers:
        assert ours.tolist() == entry["values"]


def _rolled_keys_by_rolling(ids: torch.Tensor, window, expand, rolled_indices) -> torch.Tensor:
    """The original's construction: four torch.roll copies, split, concatenated, selected."""
    (eh, ew) = expand
    own = split_windows(ids, window, 1)
    copies = [split_windows(torch.roll(ids, shifts=(dy * eh, dx * ew), dims=(2, 3)), window, 1)
              for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1))]
    rolled = torch.cat(copies, dim=4)[:, :, :, :, rolled_indices]
    return torch.cat((own, rolled), dim=4)[0, :, 0, 0, :, 0]  # [nW, K]


@pytest.mark.parametrize("grid, window", [((3, 2), (5, 9)), ((2, 3), (3, 4)), ((1, 1), (5, 9))])
def test_key_positions_equal_four_rolled_copies(grid, window):
    expand = tuple((s + 1) // 2 for s in window)
    rolled_indices = rolled_neighbour_indices(window, expand)
    h, w = grid[0] * window[0], grid[1] * window[1]
    ids = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w, 1)
    expected = _rolled_keys_by_rolling(ids, window, expand, rolled_indices).long()
    assert torch.equal(window_key_positions(grid, window, expand, rolled_indices), expected)


def test_gather_window_tokens_picks_positions_per_head():
    x = _tokens(1, 2, 2, 3, 4).flatten(2, 3)  # [1, 2, 6, 4]
    positions = torch.tensor([[5, 0], [1, 1]])
    out = gather_window_tokens(x, positions, n_head=2)
    assert out.shape == (1, 2, 2, 2, 2, 2)  # [B, nW, heads, T, K, c]
    assert torch.equal(out[0, 0, 1, 1, 0], x[0, 1, 5, 2:4])
    assert torch.equal(out[0, 1, 0, 0, 1], x[0, 0, 1, 0:2])


def test_split_and_merge_gradcheck_float64():
    x = torch.randn(1, 2, 2, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: merge_windows(split_windows(a, (2, 3), 2) * 2.0, (1, 2), (2, 3)), (x,))
    positions = torch.tensor([[0, 3, 7], [11, 2, 2]])
    assert torch.autograd.gradcheck(lambda a: gather_window_tokens(a.flatten(2, 3), positions, 2), (x,))
