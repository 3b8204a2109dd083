"""Forward-backward consistency: |f + b(p + f)|^2 < alpha1 (|f|^2 + |b|^2) + alpha2."""
from __future__ import annotations

import pytest
import torch

from propainter_core.ops.consistency import bidirectional_consistency, forward_backward_consistency


def _constant(n: int, h: int, w: int, dx: float, dy: float, dtype=torch.float32) -> torch.Tensor:
    flow = torch.empty(n, 2, h, w, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def test_zero_flows_are_consistent_everywhere():
    valid = forward_backward_consistency(torch.zeros(2, 2, 5, 7), torch.zeros(2, 2, 5, 7))
    assert valid.shape == (2, 1, 5, 7) and valid.dtype == torch.float32
    assert torch.equal(valid, torch.ones(2, 1, 5, 7))


def test_opposite_shift_is_consistent_except_where_the_target_leaves_the_frame():
    valid = forward_backward_consistency(_constant(1, 4, 6, 1.0, 0.0), _constant(1, 4, 6, -1.0, 0.0))
    expected = torch.ones(1, 1, 4, 6)
    expected[..., -1] = 0  # the last column's target is outside: b reads 0, |f|^2 = 1 >= 0.51
    assert torch.equal(valid, expected)


@pytest.mark.parametrize("residual, expected", [(0.71, 1.0), (0.711, 0.0)])
def test_threshold_is_strict_and_uses_both_alphas(residual, expected):
    # f = 0, b = r: |f + b|^2 = r^2 < 0.01 * r^2 + 0.5  <=>  r < sqrt(0.5 / 0.99) = 0.71067
    valid = forward_backward_consistency(torch.zeros(1, 2, 3, 3, dtype=torch.float64),
                                         _constant(1, 3, 3, residual, 0.0, torch.float64))
    assert valid.dtype == torch.float64
    assert torch.equal(valid, torch.full((1, 1, 3, 3), expected, dtype=torch.float64))


def test_alphas_are_keywords():
    f, b = torch.zeros(1, 2, 2, 3), _constant(1, 2, 3, 0.0, 2.0)
    assert forward_backward_consistency(f, b).sum() == 0
    assert forward_backward_consistency(f, b, alpha2=4.5).sum() == 6
    assert forward_backward_consistency(f, b, alpha1=0.2, alpha2=3.3).sum() == 6  # 4 < 0.8 + 3.3


def test_non_contiguous_flows():
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(1, 5, 7, 2, generator=gen).permute(0, 3, 1, 2)
    b = torch.randn(1, 5, 7, 3, generator=gen)[..., 1:].permute(0, 3, 1, 2)
    assert not f.is_contiguous() and not b.is_contiguous()
    assert torch.equal(forward_backward_consistency(f, b), forward_backward_consistency(f.contiguous(), b.contiguous()))


def test_bidirectional_equals_pairwise_calls():
    gen = torch.Generator().manual_seed(1)
    flows_f = torch.randn(2, 3, 2, 6, 5, generator=gen)
    flows_b = -flows_f + 0.5 * torch.randn(2, 3, 2, 6, 5, generator=gen)
    valid_f, valid_b = bidirectional_consistency(flows_f, flows_b)
    assert valid_f.shape == valid_b.shape == (2, 3, 1, 6, 5)
    for t in range(3):
        assert torch.equal(valid_f[:, t], forward_backward_consistency(flows_f[:, t], flows_b[:, t]))
        assert torch.equal(valid_b[:, t], forward_backward_consistency(flows_b[:, t], flows_f[:, t]))
    assert 0 < valid_f.mean() < 1


def test_bidirectional_with_a_single_frame_is_empty():
    valid_f, valid_b = bidirectional_consistency(torch.zeros(1, 0, 2, 4, 4), torch.zeros(1, 0, 2, 4, 4))
    assert valid_f.shape == valid_b.shape == (1, 0, 1, 4, 4)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"same shape \[N, 2, H, W\]"):
        forward_backward_consistency(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match=r"\[B, T-1, 2, H, W\]"):
        bidirectional_consistency(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
