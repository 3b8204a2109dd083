"""Modulated deformable convolution against a direct per-pixel implementation of its definition."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from propainter_core.ops.deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d


def _bilinear_zero_outside(plane: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """torchvision's ``bilinear_interpolate`` (deform_conv2d_kernel.cpp) for one point: ``[C]``."""
    height, width = plane.shape[-2:]
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return plane.new_zeros(plane.shape[0])
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    total = plane.new_zeros(plane.shape[0])
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < height and 0 <= xx < width:
                total = total + wy * wx * plane[:, yy, xx]
    return total


def _reference(input, offset, mask, weight, bias, stride, padding, dilation):
    """Loop over batch, output pixel, deform group and tap; float64."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    batch, in_ch, height, width = input.shape
    out_ch, _, kh, kw = weight.shape
    out_h, out_w = offset.shape[-2:]
    groups = offset.shape[1] // (2 * kh * kw)
    per_group = in_ch // groups
    out = torch.zeros(batch, out_ch, out_h, out_w, dtype=torch.float64)
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                column = torch.zeros(in_ch, kh, kw, dtype=torch.float64)
                for g in range(groups):
                    chans = slice(g * per_group, (g + 1) * per_group)
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = offset[b, 2 * (g * kh * kw + k), oy, ox].item()
                            dx = offset[b, 2 * (g * kh * kw + k) + 1, oy, ox].item()
                            y = oy * sh - ph + i * dh + dy
                            x = ox * sw - pw + j * dw + dx
                            value = _bilinear_zero_outside(input[b, chans], y, x)
                            if mask is not None:
                                value = value * mask[b, g * kh * kw + k, oy, ox]
                            column[chans, i, j] = value
                out[b, :, oy, ox] = (weight * column).flatten(1).sum(1)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def _random_case(*, batch=2, in_ch=4, out_ch=3, size=(5, 7), kernel=(3, 3), stride=(1, 1),
                 padding=(1, 1), dilation=(1, 1), groups=1, offset_scale=2.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kh, kw = kernel
    out_h = (size[0] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (size[1] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    f64 = dict(dtype=torch.float64, generator=gen)
    input = torch.randn(batch, in_ch, *size, **f64)
    offset = offset_scale * torch.randn(batch, 2 * groups * kh * kw, out_h, out_w, **f64)
    mask = torch.rand(batch, groups * kh * kw, out_h, out_w, **f64)
    weight = torch.randn(out_ch, in_ch, kh, kw, **f64)
    bias = torch.randn(out_ch, **f64)
    return input, offset, mask, weight, bias


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,size", [
    ((3, 3), (1, 1), (1, 1), (1, 1), 1, (5, 7)),
    ((3, 3), (1, 1), (1, 1), (1, 1), 4, (5, 7)),
    ((3, 3), (2, 2), (1, 1), (1, 1), 2, (7, 5)),
    ((3, 3), (1, 1), (2, 2), (2, 2), 2, (5, 5)),
    ((3, 2), (2, 1), (0, 1), (1, 2), 4, (7, 6)),
    ((1, 1), (1, 1), (0, 0), (1, 1), 2, (3, 4)),
    ((3, 3), (1, 1), (1, 1), (1, 1), 2, (1, 4)),  # one-row input: sampler normalisation edge case
])
def test_matches_per_pixel_definition(kernel, stride, padding, dilation, groups, size):
    input, offset, mask, weight, bias = _random_case(kernel=kernel, stride=stride, padding=padding,
                                                     dilation=dilation, groups=groups, size=size)
    ours = modulated_deform_conv2d(input, offset, mask, weight, bias, stride=stride, padding=padding,
                                   dilation=dilation)
    ref = _reference(input, offset, mask, weight, bias, stride, padding, dilation)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_offsets_far_out_of_bounds_read_zero():
    input, offset, mask, weight, bias = _random_case(groups=2, offset_scale=1.0)
    offset[:, 0::2] += 100.0  # every dy pushes every tap far below the image
    out = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    torch.testing.assert_close(out, bias.view(1, -1, 1, 1).expand_as(out), rtol=0, atol=0)


def test_partly_out_of_bounds_and_integer_offsets_match_definition():
    input, offset, mask, weight, bias = _random_case(groups=2, offset_scale=0.0)
    offset += torch.tensor([-1.0, 0.5, 4.25, -7.0, 0.999]).repeat(offset.numel() // 5 + 1)[
        :offset.numel()].view_as(offset)
    ours = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    ref = _reference(input, offset, mask, weight, bias, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
def test_zero_offsets_and_unit_mask_equal_conv2d(stride, padding, dilation):
    input, offset, mask, weight, bias = _random_case(groups=2, size=(6, 9), stride=(stride, stride),
                                                     padding=(padding, padding), dilation=(dilation, dilation))
    ours = modulated_deform_conv2d(input, torch.zeros_like(offset), torch.ones_like(mask), weight, bias,
                                   stride=stride, padding=padding, dilation=dilation)
    expected = F.conv2d(input, weight, bias, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    no_mask = modulated_deform_conv2d(input, torch.zeros_like(offset), None, weight, bias,
                                      stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(no_mask, expected, rtol=1e-12, atol=1e-12)


def test_integer_shift_moves_the_image():
    # A single-tap kernel with dx = +1 everywhere reads the pixel to the right; the last column reads 0.
    input = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4)
    offset = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    offset[:, 1] = 1.0
    out = modulated_deform_conv2d(input, offset, torch.ones(1, 1, 3, 4, dtype=torch.float64),
                                  torch.ones(1, 1, 1, 1, dtype=torch.float64))
    expected = torch.tensor([[1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=0)


def test_non_contiguous_inputs():
    input, offset, mask, weight, bias = _random_case(groups=2)
    expected = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    nc_input = input.transpose(2, 3).contiguous().transpose(2, 3)
    nc_offset = offset.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    nc_mask = torch.stack([mask, mask], dim=-1)[..., 0]
    nc_weight = weight.transpose(0, 1).contiguous().transpose(0, 1)
    assert not any(t.is_contiguous() for t in (nc_input, nc_offset, nc_mask, nc_weight))
    out = modulated_deform_conv2d(nc_input, nc_offset, nc_mask, nc_weight, bias, padding=1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("in_ch,size,groups,fast_mode", [(2, (2, 3), 1, False), (4, (3, 4), 2, True)])
def test_gradcheck_all_inputs(in_ch, size, groups, fast_mode):
    input, offset, mask, weight, bias = _random_case(batch=1, in_ch=in_ch, out_ch=2, size=size,
                                                     groups=groups, seed=3)
    # Keep sampling points away from integer coordinates, where bilinear is not differentiable.
    offset = offset.round() + 0.3 + 0.4 * torch.rand(offset.shape, dtype=torch.float64,
                                                     generator=torch.Generator().manual_seed(1))
    tensors = [t.clone().requires_grad_(True) for t in (input, offset, mask, weight, bias)]

    def fn(i, o, m, w, b):
        return modulated_deform_conv2d(i, o, m, w, b, padding=1)

    # fast mode checks random projections of the Jacobian: cheap on the larger, grouped case
    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-5, fast_mode=fast_mode)


def test_module_equals_function_and_holds_checkpoint_names():
    conv = ModulatedDeformConv2d(8, 5, 3, padding=1, deform_groups=4).double()
    assert set(dict(conv.named_parameters())) == {"weight", "bias"}
    assert conv.weight.shape == (5, 8, 3, 3)
    input, offset, mask, _, _ = _random_case(in_ch=8, out_ch=5, groups=4)
    expected = modulated_deform_conv2d(input, offset, mask, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(conv(input, offset, mask), expected, rtol=0, atol=0)
    assert ModulatedDeformConv2d(4, 2, 3, bias=False).bias is None


def test_float32_close_to_float64():
    input, offset, mask, weight, bias = _random_case(groups=2, size=(9, 11))
    ref = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    out = modulated_deform_conv2d(*(t.float() for t in (input, offset, mask, weight, bias)), padding=1)
    assert out.dtype == torch.float32
    assert (out.double() - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("change,message", [
    (lambda a: {**a, "input": a["input"][0]}, r"input must have shape \[B, C_in, H, W\], got \(4, 5, 7\)"),
    (lambda a: {**a, "offset": a["offset"][:, :-1]}, r"offset must have 2\*G\*kh\*kw channels"),
    (lambda a: {**a, "offset": a["offset"][..., :-1]}, r"offset must have shape \[B=2, 2\*G\*kh\*kw=36, H_out=5, W_out=7\]"),
    (lambda a: {**a, "mask": a["mask"][:, :9]}, r"mask must have shape \[B=2, G\*kh\*kw=18, H_out=5, W_out=7\]"),
    (lambda a: {**a, "weight": a["weight"][:, :2]}, r"weight must have shape \[C_out, C_in=4, kh, kw\]"),
    (lambda a: {**a, "bias": a["bias"][:2]}, r"bias must have shape \[C_out=3\]"),
    (lambda a: {**a, "offset": torch.zeros(2, 54, 5, 7, dtype=torch.float64),
                "mask": torch.zeros(2, 27, 5, 7, dtype=torch.float64)},
     r"C_in=4 is not divisible by the 3 deform groups"),
])
def test_shape_errors_name_the_dimension(change, message):
    input, offset, mask, weight, bias = _random_case(groups=2)
    args = change(dict(input=input, offset=offset, mask=mask, weight=weight, bias=bias))
    with pytest.raises(ValueError, match=message):
        modulated_deform_conv2d(args["input"], args["offset"], args["mask"], args["weight"], args["bias"],
                                padding=1)


def test_too_small_input_is_a_clear_error():
    input, offset, mask, weight, bias = _random_case(size=(2, 2), padding=(0, 0))
    with pytest.raises(ValueError, match="too small for a 3x3 kernel"):
        modulated_deform_conv2d(input, offset[..., :1, :1], mask[..., :1, :1], weight, bias)
    with pytest.raises(ValueError, match="not divisible by deform_groups"):
        ModulatedDeformConv2d(6, 2, 3, deform_groups=4)


@pytest.mark.parametrize("budget", [1, 4 * 18 * 7 * 2])  # one output row per band; two rows per band
def test_row_bands_give_the_same_result(monkeypatch, budget):
    import propainter_core.ops.deform_conv as deform_conv

    input, offset, mask, weight, bias = _random_case(groups=2, size=(5, 7), stride=(1, 1))
    whole = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    monkeypatch.setattr(deform_conv, "MAX_COLUMN_ELEMENTS", budget)
    banded = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-12)
    ref = _reference(input, offset, mask, weight, bias, (1, 1), (1, 1), (1, 1))
    torch.testing.assert_close(banded, ref, rtol=1e-10, atol=1e-10)


def test_inputs_are_left_unchanged_and_grad_mode_agrees():
    input, offset, mask, weight, bias = _random_case(groups=2)
    copies = [t.clone() for t in (input, offset, mask, weight, bias)]
    with torch.no_grad():
        fast = modulated_deform_conv2d(input, offset, mask, weight, bias, padding=1)
    mask_grad = mask.clone().requires_grad_(True)
    tracked = modulated_deform_conv2d(input, offset, mask_grad, weight, bias, padding=1)
    torch.testing.assert_close(fast, tracked.detach(), rtol=0, atol=0)
    for before, after in zip(copies, (input, offset, mask, weight, bias)):
        assert torch.equal(before, after)
