"""The recurrent flow-completion network: fill optical flow inside masked regions.

Mirrors the official ``RecurrentFlowCompleteNet`` module tree, so ``recurrent_flow_completion.pth``
loads with ``strict=True``: a pseudo-3D encoder to 1/8 resolution, dilated convolutions,
bidirectional deformable propagation, and a 2-D decoder with one skip connection.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..ops.upsample import Upsample2xConv
from .blocks import FlowEdgeHead, PseudoConv3dBlock
from .config import SIZE_MULTIPLE, FlowCompletionConfig
from .propagation import BidirectionalPropagation

# parity: model/recurrent_flow_completion.py:255-262, dilations of the three mid convolutions.
MID_DILATIONS = (3, 2, 1)


class FlowPair(NamedTuple):
    """Forward flows (frame t -> t+1) and backward flows (t+1 -> t), each ``[B, T-1, 2, H, W]``."""

    forward: Tensor
    backward: Tensor


class RecurrentFlowCompletion(nn.Module):
    """Complete masked optical flow; built from its parts (see :func:`build_flow_completion`).

    The keyword names are the checkpoint's top-level keys.
    """

    def __init__(self, *, downsample: nn.Module, encoder1: nn.Module, encoder2: nn.Module,
                 mid_dilation: nn.Module, feat_prop_module: BidirectionalPropagation,
                 decoder2: nn.Module, decoder1: nn.Module, upsample: nn.Module,
                 edgeDetector: FlowEdgeHead) -> None:  # noqa: N803 - the checkpoint's key
        super().__init__()
        self.downsample = downsample
        self.encoder1 = encoder1
        self.encoder2 = encoder2
        self.mid_dilation = mid_dilation
        self.feat_prop_module = feat_prop_module
        self.decoder2 = decoder2
        self.decoder1 = decoder1
        self.upsample = upsample
        self.edgeDetector = edgeDetector

    def forward(self, masked_flows: Tensor, masks: Tensor) -> Tensor:
        """Predict flows for one temporal direction.

        Args:
            masked_flows: ``[B, N, 2, H, W]`` flows (x, y in pixels) with the holes zeroed.
            masks: ``[B, N, 1, H, W]``, 1 = hole. ``H`` and ``W`` multiples of 8.

        Returns:
            ``[B, N, 2, H, W]`` predicted flows everywhere (combine with :func:`combine_flows`).
        """
        batch, steps, _, height, width = masked_flows.shape
        inputs = torch.cat((masked_flows, masks), dim=2).transpose(1, 2)  # [B, 3, N, H, W]
        half = self.downsample(inputs)  # [B, c1, N, H/2, W/2]
        quarter = self.encoder1(half)  # [B, c2, N, H/4, W/4]
        eighth = self.mid_dilation(self.encoder2(quarter))  # [B, c3, N, H/8, W/8]
        eighth = self.feat_prop_module(eighth.transpose(1, 2))  # [B, N, c3, H/8, W/8]
        skip = quarter.transpose(1, 2).flatten(0, 1)  # [B*N, c2, H/4, W/4]
        # parity: model/recurrent_flow_completion.py:324-330; only the 1/4 skip is used (the
        # official code reshapes the 1/2 features too, then ignores them).
        decoded = self.decoder2(eighth.flatten(0, 1)) + skip  # [B*N, c2, H/4, W/4]
        flows = self.upsample(self.decoder1(decoded))  # [B*N, 2, H, W]
        return flows.view(batch, steps, 2, height, width)

    def edges(self, flows: Tensor) -> Tensor:
        """Flow-edge probabilities ``[B, N, 1, H, W]`` of flows ``[B, N, 2, H, W]``.

        The official forward computes these only in training mode; inference never needs them.
        """
        batch, steps = flows.shape[:2]
        return self.edgeDetector(flows.flatten(0, 1)).view(batch, steps, 1, *flows.shape[-2:])

    def complete_bidirectional(self, flows_forward: Tensor, flows_backward: Tensor,
                               masks: Tensor, mapper: Callable = map) -> FlowPair:
        """Predict both flow directions from flows whose holes are masked out here.

        Args:
            flows_forward: ``[B, T-1, 2, H, W]``, flow from frame t to t+1.
            flows_backward: ``[B, T-1, 2, H, W]``, flow from frame t+1 to t.
            masks: ``[B, T, 1, H, W]``, 1 = hole (any float or bool dtype).
            mapper: ``mapper(function, items)`` gives ``function(item)`` for each item in order:
                the builtin ``map``, or workers that run the directions at once (the same numbers;
                twice the activations alive, so the pipeline does not).

        Returns:
            :class:`FlowPair` of predictions ``[B, T-1, 2, H, W]`` (the raw network output,
            also outside the hole; equals the official ``forward_bidirect_flow``'s first return).

        Raises:
            ValueError: mismatched shapes, or a size that is not a multiple of 8.
        """
        check_flow_inputs(flows_forward, flows_backward, masks)
        masks = masks.to(flows_forward.dtype)
        masks_forward, masks_backward = masks[:, :-1], masks[:, 1:]
        # parity: model/recurrent_flow_completion.py:345-364; the backward direction runs
        # time-reversed through the same network, then is flipped back.
        # The two directions are independent: ``mapper`` may run them on two workers.
        inputs = [(flows_forward * (1 - masks_forward), masks_forward),
                  (torch.flip(flows_backward * (1 - masks_backward), dims=[1]), torch.flip(masks_backward, dims=[1]))]
        pred_forward, pred_backward = mapper(lambda pair: self(*pair), inputs)
        return FlowPair(pred_forward, torch.flip(pred_backward, dims=[1]))


def check_flow_inputs(flows_forward: Tensor, flows_backward: Tensor, masks: Tensor) -> None:
    """Raise a ValueError naming the tensor whose shape does not fit ``[B, T-1, 2, H, W]``/``[B, T, 1, H, W]``."""
    for name, tensor in (("flows_forward", flows_forward), ("flows_backward", flows_backward)):
        if tensor.ndim != 5 or tensor.shape[2] != 2:
            raise ValueError(f"{name} must have shape [B, T-1, 2, H, W], got {tuple(tensor.shape)}")
    if flows_backward.shape != flows_forward.shape:
        raise ValueError(f"flows_backward {tuple(flows_backward.shape)} must match flows_forward "
                         f"{tuple(flows_forward.shape)}")
    batch, steps, _, height, width = flows_forward.shape
    if tuple(masks.shape) != (batch, steps + 1, 1, height, width):
        raise ValueError(f"masks must have shape [B={batch}, T={steps + 1}, 1, H={height}, W={width}] "
                         f"for {steps} flows, got {tuple(masks.shape)}")
    if steps < 1 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height == 0 or width == 0:
        raise ValueError(f"flow completion needs at least 1 flow and H, W positive multiples of "
                         f"{SIZE_MULTIPLE}, got {steps} flows of {height}x{width}")


def combine_flows(flows_forward: Tensor, flows_backward: Tensor, pred_forward: Tensor,
                  pred_backward: Tensor, masks: Tensor) -> FlowPair:
    """Keep the given flows outside the hole and the predictions inside it.

    Args:
        flows_forward, flows_backward: ``[B, T-1, 2, H, W]`` flows as computed (e.g. by RAFT).
        pred_forward, pred_backward: ``[B, T-1, 2, H, W]`` from :meth:`complete_bidirectional`.
        masks: ``[B, T, 1, H, W]``, 1 = hole; frame t's mask applies to forward flow t and
            frame t+1's to backward flow t.

    Returns:
        :class:`FlowPair` ``pred * m + flow * (1 - m)`` per direction.
    """
    check_flow_inputs(flows_forward, flows_backward, masks)
    masks = masks.to(flows_forward.dtype)
    # parity: model/recurrent_flow_completion.py:368-375 (combine_flow).
    masks_forward, masks_backward = masks[:, :-1], masks[:, 1:]
    return FlowPair(pred_forward * masks_forward + flows_forward * (1 - masks_forward),
                    pred_backward * masks_backward + flows_backward * (1 - masks_backward))


def _encoder_stage(in_channels: int, out_channels: int, slope: float) -> nn.Sequential:
    """Two pseudo-3D blocks, the second halving the spatial size (``encoder1``/``encoder2``)."""
    return nn.Sequential(
        PseudoConv3dBlock(in_channels, in_channels, 3, 1, 1, negative_slope=slope),
        nn.LeakyReLU(slope, inplace=True),
        PseudoConv3dBlock(in_channels, out_channels, 3, 2, 1, negative_slope=slope),
        nn.LeakyReLU(slope, inplace=True),
    )


def _decoder_stage(in_channels: int, out_channels: int, slope: float, *, final: bool) -> nn.Sequential:
    """3x3 conv, LeakyReLU, 2x upsampling conv (and a LeakyReLU unless ``final``)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, in_channels, 3, 1, 1), nn.LeakyReLU(slope, inplace=True),
                               Upsample2xConv(in_channels, out_channels)]
    if not final:
        layers.append(nn.LeakyReLU(slope, inplace=True))
    return nn.Sequential(*layers)


def build_flow_completion(config: FlowCompletionConfig | None = None) -> RecurrentFlowCompletion:
    """Build the network from ``config`` (official defaults), randomly initialised, in eval mode.

    Load weights afterwards with ``propainter_core.checkpoints.load_weights``.
    """
    config = config or FlowCompletionConfig()
    c1, c2, c3 = config.channels
    slope = config.encoder_slope
    mid: list[nn.Module] = []
    for dilation in MID_DILATIONS:
        mid += [nn.Conv3d(c3, c3, (1, 3, 3), padding=(0, dilation, dilation), dilation=(1, dilation, dilation)),
                nn.LeakyReLU(slope, inplace=True)]
    net = RecurrentFlowCompletion(
        # parity: model/recurrent_flow_completion.py:236-239, replicate padding in the first conv only.
        downsample=nn.Sequential(nn.Conv3d(3, c1, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2),
                                           padding_mode="replicate"),
                                 nn.LeakyReLU(slope, inplace=True)),
        encoder1=_encoder_stage(c1, c2, slope),
        encoder2=_encoder_stage(c2, c3, slope),
        mid_dilation=nn.Sequential(*mid),
        feat_prop_module=BidirectionalPropagation(
            c3, deform_groups=config.deform_groups, max_residue_magnitude=config.max_residue_magnitude,
            negative_slope=config.propagation_slope),
        decoder2=_decoder_stage(c3, c2, slope, final=False),
        decoder1=_decoder_stage(c2, c1, slope, final=False),
        upsample=_decoder_stage(c1, 2, slope, final=True),
        edgeDetector=FlowEdgeHead(2, 1, config.edge_channels),
    )
    return net.eval()
