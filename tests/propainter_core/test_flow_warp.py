"""flow_warp: backward warping with the official align_corners=True convention."""
from __future__ import annotations

import pytest
import torch

from propainter_core.ops.flow_warp import flow_to_sampling_grid, flow_warp


def _ramp(n: int = 1, c: int = 2, h: int = 5, w: int = 7, dtype=torch.float32) -> torch.Tensor:
    return torch.arange(n * c * h * w, dtype=dtype).view(n, c, h, w)


def _constant_flow(n: int, h: int, w: int, dx: float, dy: float, dtype=torch.float32) -> torch.Tensor:
    flow = torch.empty(n, 2, h, w, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def test_zero_flow_is_identity_on_odd_sizes():
    x = _ramp(2, 3, 5, 7)
    assert torch.equal(flow_warp(x, torch.zeros(2, 2, 5, 7), "nearest"), x)
    # bilinear goes through the [-1, 1] normalisation and back, which rounds (as in the original)
    out = flow_warp(x, torch.zeros(2, 2, 5, 7), "bilinear")
    assert torch.allclose(out, x, rtol=0, atol=1e-4) and not torch.equal(out, torch.zeros_like(x))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_integer_shift_reads_neighbour_and_zeros_outside(interpolation):
    x = _ramp(1, 1, 4, 5)
    out = flow_warp(x, _constant_flow(1, 4, 5, dx=2.0, dy=-1.0), interpolation)
    expected = torch.zeros_like(x)
    expected[:, :, 1:, :3] = x[:, :, :-1, 2:]  # out[y, x] = in[y - 1, x + 2]
    if interpolation == "nearest":
        assert torch.equal(out, expected)
    else:  # the normalisation round trip may leave float rounding in the bilinear weights
        assert torch.allclose(out, expected, rtol=0, atol=1e-4)


def test_bilinear_half_pixel_is_the_mean_of_two_pixels():
    x = torch.tensor([[[[0.0, 2.0, 10.0]]]]).expand(1, 1, 2, 3).contiguous()
    out = flow_warp(x, _constant_flow(1, 2, 3, dx=0.5, dy=0.0), "bilinear")
    # the last column reads halfway into the zero border
    assert torch.allclose(out[0, 0, 0], torch.tensor([1.0, 6.0, 5.0]))


def test_nearest_rounds_half_to_even_like_grid_sample():
    x = torch.tensor([[[[10.0, 20.0, 30.0, 40.0, 50.0]]]]).expand(1, 1, 2, 5).contiguous()
    out = flow_warp(x, _constant_flow(1, 2, 5, dx=0.5, dy=0.0), "nearest")
    # positions 0.5, 1.5, 2.5, 3.5 round to 0, 2, 2, 4; 4.5 rounds to 4 (inside the frame)
    assert out[0, 0, 0].tolist() == [10.0, 30.0, 30.0, 50.0, 50.0]


def test_border_padding_repeats_the_edge():
    x = _ramp(1, 1, 3, 4)
    out = flow_warp(x, _constant_flow(1, 3, 4, dx=3.0, dy=0.0), "nearest", padding_mode="border")
    assert torch.equal(out, x[..., 3:].expand(1, 1, 3, 4))


def test_one_pixel_wide_frames_do_not_divide_by_zero():
    x = _ramp(1, 1, 4, 1)
    assert torch.equal(flow_warp(x, torch.zeros(1, 2, 4, 1)), x)


def test_grid_matches_the_official_formula():
    flow = torch.randn(2, 2, 5, 6, generator=torch.Generator().manual_seed(0))
    grid = flow_to_sampling_grid(flow)
    assert grid.shape == (2, 5, 6, 2)
    assert torch.equal(grid[..., 0], 2.0 * (torch.arange(6.0) + flow[:, 0]) / 5 - 1.0)
    assert torch.equal(grid[..., 1], 2.0 * (torch.arange(5.0).view(5, 1) + flow[:, 1]) / 4 - 1.0)


def test_non_contiguous_inputs_give_the_same_result():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, 9, 3, generator=gen)  # [N, W, H, C] storage
    flow = torch.randn(2, 9, 7, 4, generator=gen)[..., :2]  # [N, H, W, 2] storage, sliced
    x_view, flow_view = x.permute(0, 3, 2, 1), flow.permute(0, 3, 1, 2)
    assert not x_view.is_contiguous() and not flow_view.is_contiguous()
    assert torch.equal(flow_warp(x_view, flow_view), flow_warp(x_view.contiguous(), flow_view.contiguous()))


def test_bilinear_gradcheck_float64():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    # keep sample positions away from integer coordinates, where bilinear is not differentiable
    flow = (torch.rand(1, 2, 4, 5, dtype=torch.float64, generator=gen) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, f: flow_warp(a, f, "bilinear"), (x, flow))


@pytest.mark.parametrize(
    "x_shape, flow_shape, message",
    [((1, 2, 4, 5), (1, 4, 5, 2), r"flow must have shape \[N, 2, H, W\]"),
     ((1, 2, 4, 5), (1, 2, 4, 6), r"does not match x"),
     ((2, 4, 5), (1, 2, 4, 5), r"x must have shape \[N, C, H, W\]")])
def test_shape_errors_name_the_expected_layout(x_shape, flow_shape, message):
    with pytest.raises(ValueError, match=message):
        flow_warp(torch.zeros(x_shape), torch.zeros(flow_shape))


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        flow_warp(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), "bicubic")  # type: ignore[arg-type]
