"""The InpaintGenerator: encoder, feature propagation, sparse transformer, decoder."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import GeneratorConfig
from .decoder import build_decoder
from .encoder import Encoder
from .feature_propagation import FeaturePropagation
from .image_propagation import ImagePropagation, PropagationResult
from .soft_split import SoftComp, SoftSplit
from .sparse_transformer import TemporalSparseTransformerBlock, check_token_grid

# The encoder works at 1/4 of the frame size; flows are downsampled and rescaled by this factor.
FEATURE_STRIDE = 4


def _check_clip(frames: Tensor, masks_in: Tensor, masks_updated: Tensor, flows: tuple[Tensor, Tensor],
                num_local_frames: int) -> None:
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(f"InpaintGenerator: frames must have shape [B, T, 3, H, W], got {tuple(frames.shape)}")
    batch, length, _, height, width = frames.shape
    if height % FEATURE_STRIDE or width % FEATURE_STRIDE:
        raise ValueError(f"InpaintGenerator: frame size {height}x{width} must be a multiple of {FEATURE_STRIDE}")
    if not 1 <= num_local_frames <= length:
        raise ValueError(f"InpaintGenerator: num_local_frames={num_local_frames} must be in 1..{length}")
    for name, mask in (("masks_in", masks_in), ("masks_updated", masks_updated)):
        if tuple(mask.shape) != (batch, length, 1, height, width):
            raise ValueError(f"InpaintGenerator: {name} must have shape [B, T, 1, H, W] = "
                             f"{[batch, length, 1, height, width]}, got {tuple(mask.shape)}")
    for name, flow in zip(("flows_forward", "flows_backward"), flows):
        if tuple(flow.shape) != (batch, num_local_frames - 1, 2, height, width):
            raise ValueError(f"InpaintGenerator: {name} must have shape [B, L-1, 2, H, W] = "
                             f"{[batch, num_local_frames - 1, 2, height, width]}, got {tuple(flow.shape)}")


class InpaintGenerator(nn.Module):
    """ProPainter's video inpainting network (``ProPainter.pth``).

    Attribute names are the checkpoint's keys: ``encoder``, ``decoder``, ``ss``, ``sc``,
    ``feat_prop_module``, ``transformers`` (``img_prop_module`` and ``max_pool`` hold no weights).

    Args:
        encoder: frames + masks -> features at 1/4 size.
        decoder: features -> RGB logits at full size.
        soft_split: features -> tokens.
        soft_comp: tokens -> features.
        feature_propagation: bidirectional deformable propagation of the local frames' features.
        transformer: the sparse window transformer blocks.
        image_propagation: flow-guided pixel propagation (:meth:`img_propagation`).
    """

    def __init__(self, *, encoder: nn.Module, decoder: nn.Module, soft_split: SoftSplit, soft_comp: SoftComp,
                 feature_propagation: FeaturePropagation, transformer: TemporalSparseTransformerBlock,
                 image_propagation: ImagePropagation) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.ss = soft_split
        self.sc = soft_comp
        # parity: model/propainter.py:310 — the hole mask is pooled like the soft split's patches.
        self.max_pool = nn.MaxPool2d(soft_split.kernel_size, soft_split.stride, soft_split.padding)
        self.img_prop_module = image_propagation
        self.feat_prop_module = feature_propagation
        self.transformers = transformer

    def img_propagation(self, masked_frames: Tensor, completed_flows: tuple[Tensor, Tensor], masks: Tensor,
                        interpolation: Literal["bilinear", "nearest"] = "nearest",
                        cancel: Callable[[], None] | None = None) -> PropagationResult:
        """Propagate known pixels into the hole.

        Args:
            masked_frames: ``[B, T, 3, H, W]`` frames in -1..1 with the hole zeroed.
            completed_flows: ``(forward, backward)``, each ``[B, T-1, 2, H, W]`` in pixels.
            masks: ``[B, T, 1, H, W]``, 1 = hole.
            interpolation: pixel warp mode (the pipeline passes ``"nearest"``).
            cancel: called before every frame step; raises to stop.

        Returns:
            ``(prop_frames [B, T, 3, H, W], updated_masks [B, T, 1, H, W])``.
        """
        return self.img_prop_module(masked_frames, completed_flows[0], completed_flows[1], masks, interpolation,
                                    cancel)

    def forward(self, masked_frames: Tensor, completed_flows: tuple[Tensor, Tensor], masks_in: Tensor,
                masks_updated: Tensor, num_local_frames: int,
                interpolation: Literal["bilinear", "nearest"] = "bilinear", t_dilation: int = 2, *,
                features: Tensor | None = None, decode: Sequence[bool] | None = None) -> Tensor:
        """Inpaint the local frames of one window.

        Args:
            masked_frames: ``[B, T, 3, H, W]`` in -1..1: ``L`` local frames, then reference frames
                (after image propagation). ``H`` and ``W`` multiples of 4.
            completed_flows: ``(forward, backward)``, each ``[B, L-1, 2, H, W]``, between the
                consecutive local frames, in pixels.
            masks_in: ``[B, T, 1, H, W]`` the original hole.
            masks_updated: ``[B, T, 1, H, W]`` the hole left after image propagation.
            num_local_frames: ``L``.
            interpolation: feature warp mode inside the propagation.
            t_dilation: temporal stride of the transformer's key frames.
            features: ``[B, T, C, H/4, W/4]`` the encoder's output for these frames, when the
                caller already has it (:meth:`encode`; a frame's features depend only on that
                frame and its two masks, so windows that share frames can share them).
            decode: ``L`` flags (``B == 1``): decode only the local frames flagged; the others
                come out 0. The pipeline clears the flag of frames without a hole, whose output it
                discards (the decoder works per frame, so the decoded frames do not change).

        Returns:
            ``[B, L, 3, H, W]`` tanh output in -1..1 for the local frames (eval behaviour; the
            official training branch that also decodes the references is not kept).
        """
        _check_clip(masked_frames, masks_in, masks_updated, completed_flows, num_local_frames)
        local = num_local_frames
        batch, length, _, height, width = masked_frames.shape
        if features is None:
            features = self.encode(masked_frames, masks_in, masks_updated)  # [B, T, C, h, w]
        _, _, channels, h, w = features.shape
        token_rows, token_cols = check_token_grid((h, w), self.ss.kernel_size, self.ss.stride, self.ss.padding)

        # parity: propainter.py:374-378 — bilinear (align_corners=False) flow downsampling, / 4.
        flows = torch.cat(completed_flows, dim=1).reshape(-1, 2, height, width)  # [B*2(L-1), 2, H, W]
        if local > 1:
            flows = F.interpolate(flows, scale_factor=1 / FEATURE_STRIDE, mode="bilinear", align_corners=False)
        flows = (flows / float(FEATURE_STRIDE)).view(batch, 2 * (local - 1), 2, h, w)
        small_masks = F.interpolate(torch.cat([masks_in[:, :local], masks_updated[:, :local]], dim=2)
                                    .reshape(-1, 2, height, width), scale_factor=1 / FEATURE_STRIDE,
                                    mode="nearest").view(batch, local, 2, h, w)  # [B, L, 2, h, w]
        token_mask = self.max_pool(small_masks[:, :, :1].reshape(batch * local, 1, h, w))
        token_mask = token_mask.view(batch, local, token_rows, token_cols, 1)  # [B, L, rows, cols, 1]

        local_feat = self.feat_prop_module(features[:, :local], flows[:, : local - 1], flows[:, local - 1 :],
                                           small_masks, interpolation)
        features = torch.cat([local_feat, features[:, local:]], dim=1)  # [B, T, C, h, w]

        tokens = self.ss(features.view(batch * length, channels, h, w), batch)  # [B, T, rows, cols, hidden]
        tokens = self.transformers(tokens, (h, w), token_mask, t_dilation=t_dilation)
        # Only the local frames are decoded; composing tokens is per frame, so the references are skipped.
        trans_feat = self.sc(tokens[:, :local], (h, w)).view(batch, local, channels, h, w)
        del tokens
        local_feat = trans_feat.add_(features[:, :local])  # [B, L, C, h, w]
        del features
        # Frame by frame: the same numbers (convolutions are per sample) with a fraction of the
        # full-size activations alive at once.
        if decode is not None and (batch != 1 or len(decode) != local):
            raise ValueError(f"InpaintGenerator: decode needs B == 1 and {local} flags, got B={batch} "
                             f"and {len(decode)} flags")
        output = local_feat.new_zeros(batch * local, 3, height, width)
        for index, frame in enumerate(local_feat.reshape(batch * local, 1, channels, h, w)):
            if decode is None or decode[index]:
                output[index] = self.decoder(frame).tanh_()[0]
        return output.view(batch, local, 3, height, width)

    def encode(self, masked_frames: Tensor, masks_in: Tensor, masks_updated: Tensor) -> Tensor:
        """The encoder's features of each frame, ``[B, T, C, H/4, W/4]``.

        Args:
            masked_frames: ``[B, T, 3, H, W]`` in -1..1.
            masks_in: ``[B, T, 1, H, W]`` the original hole.
            masks_updated: ``[B, T, 1, H, W]`` the hole left after image propagation.

        Frames are encoded one at a time: the encoder works per sample, so this equals a
        batched call while holding one frame's activations.
        """
        batch, length, _, height, width = masked_frames.shape
        encoder_in = torch.cat([masked_frames, masks_in, masks_updated], dim=2)  # [B, T, 5, H, W]
        frames = encoder_in.view(batch * length, 1, 5, height, width)
        first = self.encoder(frames[0])  # [1, C, h, w]
        features = first.new_empty(batch * length, *first.shape[1:])  # [B*T, C, h, w]
        features[0] = first[0]
        for index in range(1, batch * length):
            features[index] = self.encoder(frames[index])[0]
        return features.view(batch, length, *first.shape[1:])


def build_generator(config: GeneratorConfig | None = None) -> InpaintGenerator:
    """Build an InpaintGenerator (randomly initialised, eval mode); load weights separately."""
    config = config or GeneratorConfig()
    geometry = (config.soft_split_kernel, config.soft_split_stride, config.soft_split_padding)
    generator = InpaintGenerator(
        encoder=Encoder(out_channels=config.channels, groups=config.encoder_groups),
        decoder=build_decoder(config.channels),
        soft_split=SoftSplit(config.channels, config.hidden, *geometry),
        soft_comp=SoftComp(config.channels, config.hidden, *geometry),
        feature_propagation=FeaturePropagation(config.channels, deform_groups=config.deform_groups,
                                               max_residue_magnitude=config.max_residue_magnitude),
        transformer=TemporalSparseTransformerBlock(
            dim=config.hidden, n_head=config.num_heads, window_size=config.window_size,
            pool_size=config.pool_size, depths=config.num_blocks, mlp_hidden=config.mlp_hidden,
            kernel=config.soft_split_kernel, stride=config.soft_split_stride, padding=config.soft_split_padding),
        image_propagation=ImagePropagation(mask_threshold=config.mask_threshold),
    )
    return generator.eval()
