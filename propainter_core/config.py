"""Configurations: the three networks' sizes and the inpainting run's settings.

Every default is the official one (``inference_propainter.py`` argparse, lines 189-215; the
networks' constructors for the network configs). The network configs live with their networks
and are re-exported here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Integral

from .flow_completion.config import FlowCompletionConfig
from .generator.config import GeneratorConfig
from .raft.config import RaftConfig

__all__ = ["FlowCompletionConfig", "GeneratorConfig", "InpaintSettings", "RaftConfig"]

#: parity: inference_propainter.py:302-309, RAFT clip length by processing width.
RAFT_CLIP_LENGTHS: tuple[tuple[int, int], ...] = ((640, 12), (720, 8), (1280, 4))
RAFT_CLIP_LENGTH_WIDEST = 2
#: parity: inference_propainter.py:344, context of each flow-completion sub-video (flows).
FLOW_COMPLETION_PADDING = 5
#: parity: inference_propainter.py:373, 376: image propagation chunks of at most 100 frames,
#: with 10 frames of context.
PROPAGATION_MAX_CHUNK = 100
PROPAGATION_PADDING = 10
#: Sizes must be multiples of this (the networks downsample by 8; inference_propainter.py:37).
SIZE_MULTIPLE = 8
#: Smallest height/width after rounding: below it RAFT's coarsest correlation level is one
#: pixel wide and the official sampler divides by zero (see shared/propainter_parity/README.md).
MIN_SIZE = 128


@dataclass(frozen=True)
class InpaintSettings:
    """Settings of one inpainting run, named and defaulted as the official script's options.

    Attributes:
        mask_dilation: Cross dilations of the masks (hole and flow mask), >= 0.
        ref_stride: Distance between the generator's reference frames, >= 1.
        neighbor_length: Local frames per generator window (stride ``neighbor_length // 2``), >= 2.
        subvideo_length: Flows per flow-completion sub-video, frames per image-propagation
            chunk (capped at 100), and the clip length above which references are local. >= 1.
        raft_iter: RAFT refinement iterations, >= 1.
        resize_ratio: Scale of the processing size relative to the input size, > 0.
        height: Processing height before rounding to a multiple of 8; -1 keeps the input's.
        width: Processing width before rounding; -1 keeps the input's. Set both or neither.
        fp16: Run flow completion and the generator in float16 (CUDA only).
    """

    mask_dilation: int = 4
    ref_stride: int = 10
    neighbor_length: int = 10
    subvideo_length: int = 80
    raft_iter: int = 20
    resize_ratio: float = 1.0
    height: int = -1
    width: int = -1
    fp16: bool = False

    def __post_init__(self) -> None:
        minimum = {"mask_dilation": 0, "ref_stride": 1, "neighbor_length": 2,
                   "subvideo_length": 1, "raft_iter": 1}
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not self.resize_ratio > 0:
            raise ValueError(f"resize_ratio must be > 0, got {self.resize_ratio!r}")
        if (self.height == -1) != (self.width == -1):
            raise ValueError(f"set both height and width, or neither (-1); got height={self.height}, "
                             f"width={self.width}")
        if self.height != -1 and (self.height < 1 or self.width < 1):
            raise ValueError(f"height and width must be positive or -1, got {self.height}x{self.width}")

    def processing_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` the networks run at for an input of ``height x width``.

        parity: inference_propainter.py:225-230 and 34-45: the explicit size replaces the
        input's, the ratio scales it (``int()`` truncation), then both sides round down to a
        multiple of 8.
        """
        if self.height != -1:
            height, width = self.height, self.width
        if self.resize_ratio != 1.0:
            height, width = int(self.resize_ratio * height), int(self.resize_ratio * width)
        return height - height % SIZE_MULTIPLE, width - width % SIZE_MULTIPLE

    def resizes(self, height: int, width: int) -> bool:
        """Whether the input must be resized to reach the processing size."""
        return self.processing_size(height, width) != (height, width)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def raft_clip_length(width: int) -> int:
    """Frames per RAFT clip for a processing width (parity: inference_propainter.py:302-309)."""
    for max_width, clip in RAFT_CLIP_LENGTHS:
        if width <= max_width:
            return clip
    return RAFT_CLIP_LENGTH_WIDEST
