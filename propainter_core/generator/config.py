"""The InpaintGenerator's hyper-parameters, with the official ``ProPainter.pth`` values."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of the InpaintGenerator. The defaults are the ones ``ProPainter.pth`` was trained with.

    Attributes:
        channels: feature channels after the encoder (1/4 resolution) and during propagation.
        hidden: transformer token width.
        encoder_groups: channel groups of the encoder's four fusion convolutions.
        soft_split_kernel: patch size of the soft split / composition (in feature pixels).
        soft_split_stride: patch stride.
        soft_split_padding: patch padding.
        num_blocks: temporal sparse transformer blocks.
        num_heads: attention heads.
        window_size: attention window ``(rows, cols)`` in tokens.
        pool_size: depthwise pooling window of the global (pooled) tokens.
        mlp_hidden: hidden width of the fusion feed-forward; a multiple of the kernel area.
        deform_groups: deformable-alignment offset groups.
        max_residue_magnitude: bound (pixels) of the learned offset added to the flow.
        mask_threshold: image propagation binarises warped masks at ``> mask_threshold``.
    """

    # parity: model/propainter.py:287-340 (InpaintGenerator.__init__) and the attribute dump in
    # shared/propainter_parity/model_inpaint_generator.txt.
    channels: int = 128
    hidden: int = 512
    encoder_groups: tuple[int, ...] = (1, 2, 4, 8, 1)
    soft_split_kernel: tuple[int, int] = (7, 7)
    soft_split_stride: tuple[int, int] = (3, 3)
    soft_split_padding: tuple[int, int] = (3, 3)
    num_blocks: int = 8
    num_heads: int = 4
    window_size: tuple[int, int] = (5, 9)
    pool_size: tuple[int, int] = (4, 4)
    mlp_hidden: int = 1960  # parity: sparse_transformer.py:64 (40 channels x 7x7 kernel)
    deform_groups: int = 16
    max_residue_magnitude: float = 3.0
    mask_threshold: float = 0.1  # parity: propainter.py:101 (binary_mask th=0.1)

    def __post_init__(self) -> None:
        kernel_area = self.soft_split_kernel[0] * self.soft_split_kernel[1]
        if self.hidden % self.num_heads:
            raise ValueError(f"GeneratorConfig: hidden={self.hidden} must be divisible by num_heads={self.num_heads}")
        if self.mlp_hidden % kernel_area:
            raise ValueError(f"GeneratorConfig: mlp_hidden={self.mlp_hidden} must be a multiple of the soft-split "
                             f"kernel area {kernel_area}")
        if self.channels % self.deform_groups:
            raise ValueError(f"GeneratorConfig: channels={self.channels} must be divisible by "
                             f"deform_groups={self.deform_groups}")
        if len(self.encoder_groups) != 5:
            raise ValueError(f"GeneratorConfig: encoder_groups needs 5 entries, got {self.encoder_groups}")
