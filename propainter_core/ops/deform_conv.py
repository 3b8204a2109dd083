"""Modulated deformable convolution (DCNv2) in plain PyTorch.

The official ProPainter networks call ``torchvision.ops.deform_conv2d``, which the CPU-only
torch builds we support cannot import. This module computes the same thing with one bilinear
``grid_sample`` over every kernel tap and deform group, the modulation mask, and one matmul:

    out[b, o, y, x] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
                      * mask[b, g(c), k, y, x]
                      * bilinear(input[b, c], y * s_h - p_h + i * d_h + dy[b, g(c), k, y, x],
                                              x * s_w - p_w + j * d_w + dx[b, g(c), k, y, x])

with ``k = i * kw + j``, ``g(c) = c // (C_in / G)`` and bilinear sampling that reads zeros outside
the image — torchvision's semantics, offset channel layout included (``(dy, dx)`` pairs, tap-major
within each deform group).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IntPair = int | tuple[int, int]
# Largest sampled-column tensor built at once (elements; 256 MiB in float32). Larger outputs are
# computed in bands of rows, e.g. the generator's alignment at 1080p (~300 M elements).
MAX_COLUMN_ELEMENTS = 1 << 26


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"modulated_deform_conv2d: {name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_shape(tensor: Tensor, dims: Sequence[str], name: str) -> None:
    """Raise a ValueError naming the expected dimensions when ``tensor`` has the wrong rank."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"modulated_deform_conv2d: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim != len(dims):
        raise ValueError(
            f"modulated_deform_conv2d: {name} must have shape [{', '.join(dims)}], "
            f"got {tuple(tensor.shape)} ({tensor.ndim} dims)")


def _check_size(tensor: Tensor, expected: Sequence[int], dims: Sequence[str], name: str) -> None:
    if tuple(tensor.shape) != tuple(expected):
        spelled = ", ".join(f"{d}={n}" for d, n in zip(dims, expected))
        raise ValueError(
            f"modulated_deform_conv2d: {name} must have shape [{spelled}], got {tuple(tensor.shape)}")


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _sampling_grid(offset: Tensor, groups: int, kernel: tuple[int, int], in_size: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                   row_start: int) -> Tensor:
    """Normalised ``grid_sample`` coordinates of every tap: ``[B*G, K*rows, W_out, 2]`` (x, y).

    ``offset`` holds the output rows ``row_start .. row_start + rows`` only.
    """
    batch, _, out_h, out_w = offset.shape
    kh, kw = kernel
    taps = kh * kw
    dtype, device = offset.dtype, offset.device
    offset = offset.reshape(batch * groups, taps, 2, out_h, out_w)  # [B*G, K, (dy, dx), H_out, W_out]
    # Undeformed positions: output pixel * stride - padding + tap * dilation.
    base_y = (torch.arange(row_start, row_start + out_h, device=device, dtype=dtype) * stride[0] - padding[0]).view(1, 1, out_h, 1)
    base_x = (torch.arange(out_w, device=device, dtype=dtype) * stride[1] - padding[1]).view(1, 1, 1, out_w)
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dilation[1]).repeat(kh)
    pos_y = base_y + tap_y.view(1, taps, 1, 1) + offset[:, :, 0]  # [B*G, K, H_out, W_out]
    pos_x = base_x + tap_x.view(1, taps, 1, 1) + offset[:, :, 1]
    # parity: align_corners=True maps pixel p to 2 p / (size - 1) - 1 exactly, and zeros padding
    # reads 0 outside the image, like torchvision's bilinear_interpolate (deform_conv2d_kernel.cpp).
    in_h, in_w = in_size
    grid = torch.stack((pos_x * (2.0 / (in_w - 1)) - 1.0, pos_y * (2.0 / (in_h - 1)) - 1.0), dim=-1)
    return grid.reshape(batch * groups, taps * out_h, out_w, 2)  # [B*G, K*H_out, W_out, 2]


def _validate(input: Tensor, offset: Tensor, mask: Tensor | None, weight: Tensor, bias: Tensor | None,
              stride_hw: tuple[int, int], padding_hw: tuple[int, int],
              dilation_hw: tuple[int, int]) -> tuple[int, int, int]:
    """Check every shape; returns ``(deform groups, H_out, W_out)``."""
    _check_shape(input, ["B", "C_in", "H", "W"], "input")
    _check_shape(weight, ["C_out", "C_in", "kh", "kw"], "weight")
    _check_shape(offset, ["B", "2*G*kh*kw", "H_out", "W_out"], "offset")
    batch, in_ch, in_h, in_w = input.shape
    out_ch, weight_in_ch, kh, kw = weight.shape
    taps = kh * kw
    if weight_in_ch != in_ch:
        raise ValueError(f"modulated_deform_conv2d: weight must have shape [C_out, C_in={in_ch}, kh, kw] "
                         f"(convolution groups are not supported), got {tuple(weight.shape)}")
    out_h = _output_size(in_h, kh, stride_hw[0], padding_hw[0], dilation_hw[0])
    out_w = _output_size(in_w, kw, stride_hw[1], padding_hw[1], dilation_hw[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"modulated_deform_conv2d: input {in_h}x{in_w} is too small for a {kh}x{kw} kernel "
                         f"with padding {padding_hw} and dilation {dilation_hw}")
    if offset.shape[1] % (2 * taps) != 0 or offset.shape[1] == 0:
        raise ValueError(f"modulated_deform_conv2d: offset must have 2*G*kh*kw channels (a multiple of "
                         f"{2 * taps} for a {kh}x{kw} kernel), got {offset.shape[1]}")
    groups = offset.shape[1] // (2 * taps)
    if in_ch % groups != 0:
        raise ValueError(f"modulated_deform_conv2d: C_in={in_ch} is not divisible by the {groups} deform "
                         f"groups implied by offset's {offset.shape[1]} channels")
    _check_size(offset, [batch, 2 * groups * taps, out_h, out_w], ["B", "2*G*kh*kw", "H_out", "W_out"], "offset")
    if mask is not None:
        _check_shape(mask, ["B", "G*kh*kw", "H_out", "W_out"], "mask")
        _check_size(mask, [batch, groups * taps, out_h, out_w], ["B", "G*kh*kw", "H_out", "W_out"], "mask")
    if bias is not None:
        _check_size(bias, [out_ch], ["C_out"], "bias")
    return groups, out_h, out_w


def modulated_deform_conv2d(input: Tensor, offset: Tensor, mask: Tensor | None, weight: Tensor,
                            bias: Tensor | None = None, *, stride: IntPair = 1, padding: IntPair = 0,
                            dilation: IntPair = 1) -> Tensor:
    """Modulated deformable 2-D convolution with ``torchvision.ops.deform_conv2d`` semantics.

    Args:
        input: ``[B, C_in, H, W]`` float features.
        offset: ``[B, 2*G*kh*kw, H_out, W_out]`` sampling offsets in pixels; for deform group ``g``
            and tap ``k = i*kw + j`` channel ``2*(g*kh*kw + k)`` is dy and the next one dx.
            ``G`` (deform groups) is inferred and must divide ``C_in``.
        mask: ``[B, G*kh*kw, H_out, W_out]`` modulation (already passed through a sigmoid by the
            caller), or ``None`` for plain deformable convolution (DCNv1).
        weight: ``[C_out, C_in, kh, kw]`` (no convolution groups).
        bias: ``[C_out]`` or ``None``.
        stride, padding, dilation: ints or ``(h, w)`` pairs, as in ``F.conv2d``.

    Returns:
        ``[B, C_out, H_out, W_out]`` in the input's dtype.

    Raises:
        ValueError: a tensor of the wrong rank or size, or deform groups that do not divide
            ``C_in``; the message names the tensor and the expected dimensions.
    """
    stride_hw, padding_hw, dilation_hw = (_pair(stride, "stride"), _pair(padding, "padding"),
                                          _pair(dilation, "dilation"))
    groups, out_h, out_w = _validate(input, offset, mask, weight, bias, stride_hw, padding_hw, dilation_hw)
    batch, in_ch, in_h, in_w = input.shape
    out_ch, _, kh, kw = weight.shape
    taps = kh * kw

    # A 1-pixel axis cannot be normalised with align_corners=True (division by size - 1 = 0);
    # a zero border changes nothing, since everything outside the image reads as zero anyway.
    pad_h, pad_w = int(in_h == 1), int(in_w == 1)
    if pad_h or pad_w:
        input = F.pad(input, (pad_w, pad_w, pad_h, pad_h))
        padding_hw = (padding_hw[0] - pad_h, padding_hw[1] - pad_w)
    grouped = input.reshape(batch * groups, in_ch // groups, *input.shape[-2:])  # [B*G, C_in/G, H, W]
    weight_2d = weight.reshape(out_ch, in_ch * taps)  # [C_out, C_in*K]
    geometry = ((kh, kw), tuple(input.shape[-2:]), stride_hw, padding_hw, dilation_hw)
    # Bound the sampled columns ([B, C_in*K, rows*W_out]) by processing bands of output rows.
    rows_per_band = max(1, MAX_COLUMN_ELEMENTS // max(1, batch * in_ch * taps * out_w))
    bands = []
    for row_start in range(0, out_h, rows_per_band):
        rows = slice(row_start, min(out_h, row_start + rows_per_band))
        band_mask = None if mask is None else mask[:, :, rows]
        bands.append(_deform_band(grouped, offset[:, :, rows], band_mask, weight_2d, groups, geometry,
                                  row_start))
    out = bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)  # [B, C_out, H_out*W_out]
    if bias is not None:
        out = out + bias.view(1, out_ch, 1)
    return out.view(batch, out_ch, out_h, out_w)


def _deform_band(grouped: Tensor, offset: Tensor, mask: Tensor | None, weight_2d: Tensor, groups: int,
                 geometry: tuple, row_start: int) -> Tensor:
    """Output rows ``row_start ..`` of the convolution without bias: ``[B, C_out, rows*W_out]``.

    Args:
        grouped: ``[B*G, C_in/G, H, W]`` input split by deform group.
        offset: ``[B, 2*G*K, rows, W_out]``; mask: ``[B, G*K, rows, W_out]`` or None.
        weight_2d: ``[C_out, C_in*K]``.
    """
    batch, _, rows, out_w = offset.shape
    taps = offset.shape[1] // (2 * groups)
    per_group = grouped.shape[1]
    grid = _sampling_grid(offset, groups, *geometry, row_start).to(grouped.dtype)  # [B*G, K*rows, W_out, 2]
    columns = F.grid_sample(grouped, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    columns = columns.view(batch, groups, per_group, taps, rows * out_w)  # [B, G, C_in/G, K, L]
    if mask is not None:
        mask = mask.reshape(batch, groups, 1, taps, rows * out_w).to(columns.dtype)  # [B, G, 1, K, L]
        # In place when nothing needs the unmasked columns for a gradient (halves peak memory).
        needs_grad = torch.is_grad_enabled() and (columns.requires_grad or mask.requires_grad)
        columns = columns * mask if needs_grad else columns.mul_(mask)
    columns = columns.reshape(batch, groups * per_group * taps, rows * out_w)  # [B, C_in*K, L]
    return torch.matmul(weight_2d, columns)  # [B, C_out, L]


class ModulatedDeformConv2d(nn.Module):
    """Holds a deformable convolution's ``weight`` and ``bias`` and applies it to given offsets.

    The attribute names (``weight``, ``bias``) are the official checkpoints' keys; the alignment
    modules of both networks subclass this and compute ``offset``/``mask`` themselves.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: int or ``(kh, kw)``.
        stride, padding, dilation: as in :func:`modulated_deform_conv2d`.
        deform_groups: number of offset groups ``G`` the offset head produces.
        bias: whether to hold a ``bias`` parameter.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, *, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, deform_groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if in_channels % deform_groups != 0:
            raise ValueError(f"ModulatedDeformConv2d: in_channels={in_channels} is not divisible by "
                             f"deform_groups={deform_groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # parity: model/modules/deformconv.py:40 (uniform +-1/sqrt(fan_in), zero bias).
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def deform_conv(self, input: Tensor, offset: Tensor, mask: Tensor | None) -> Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, H_out, W_out]``; see :func:`modulated_deform_conv2d`."""
        return modulated_deform_conv2d(input, offset, mask, self.weight, self.bias, stride=self.stride,
                                       padding=self.padding, dilation=self.dilation)

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None) -> Tensor:
        return self.deform_conv(input, offset, mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"deform_groups={self.deform_groups}, bias={self.bias is not None}")
