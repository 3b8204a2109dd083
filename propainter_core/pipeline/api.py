"""The public API: ``load_models`` and ``inpaint`` on plain arrays.

Example::

    models = load_models(raft="raft-things.pth", flow_completion="recurrent_flow_completion.pth",
                         generator="ProPainter.pth", device="cuda")
    result = inpaint(frames, masks, models)   # uint8 [T, H, W, 3] in, uint8 [T, H', W', 3] out
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..config import InpaintSettings
from .errors import InpaintInputError
from .models import ProPainterModels, load_models
from .run import CancelCallback, ProgressCallback, run_inpaint
from .workers import WorkersOption

__all__ = ["inpaint", "load_models", "ProPainterModels"]


def _as_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        with warnings.catch_warnings():  # read-only arrays are fine: the input is never written
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(np.ascontiguousarray(value))
    raise InpaintInputError(f"{name} must be a numpy array or a torch tensor, got {type(value).__name__}")


def _as_mask_stack(masks: torch.Tensor) -> torch.Tensor:
    """A single ``[H, W]`` mask becomes ``[1, H, W]`` (one mask for every frame)."""
    return masks.unsqueeze(0) if masks.ndim == 2 else masks


def inpaint(frames: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor,
            models: ProPainterModels, *, mask_dilation: int = 4, ref_stride: int = 10,
            neighbor_length: int = 10, subvideo_length: int = 80, raft_iter: int = 20,
            resize_ratio: float = 1.0, height: int = -1, width: int = -1, fp16: bool = False,
            progress: ProgressCallback | None = None, should_cancel: CancelCallback | None = None,
            segment_length: int | None = None,
            segment_padding: int | None = None, cpu_bf16: bool = False,
            workers: WorkersOption = "auto") -> np.ndarray | torch.Tensor:
    """Remove the masked region from a clip with ProPainter, as the official script does.

    Args:
        frames: ``[T, H, W, 3]`` uint8 RGB, T >= 2 (numpy array or torch tensor).
        masks: ``[T, H, W]``, or ``[1, H, W]`` / ``[H, W]`` for one mask on every frame; any
            dtype, nonzero = remove. Another size is resized (nearest) to the processing size.
        models: From :func:`load_models`.
        mask_dilation, ref_stride, neighbor_length, subvideo_length, raft_iter, resize_ratio,
        height, width, fp16: The official options with their defaults (see
            :class:`~propainter_core.config.InpaintSettings`).
        progress: ``progress(done, total)`` after every chunk of every stage.
        should_cancel: Polled between chunks and before every layer of the networks (a cancel
            lands within milliseconds on a GPU); True raises :class:`Cancelled`.
        segment_length: Frames per streamed segment (None: ``subvideo_length``). Clips no
            longer than one segment give exactly the official result.
        segment_padding: Context frames on each side of a segment (None: 10).
        cpu_bf16: Opt-in, never the default: convolutions and matrix products in bfloat16 on a
            CPU with native bfloat16 (about 1.85x less CPU time; on the parity clip 1 % of the
            uint8 values inside the hole move by more than one level, at most 5). Where it cannot
            run (another device, no native bfloat16) one warning is logged and the run is fp32.
        workers: ``"auto"``: on the CPU with torch at 2 threads or more, RAFT's encoder calls
            and refinement batches run on 2 worker threads with half of torch's threads each (on
            2 cores: one thread each, much less CPU time lost to threads waiting for each other);
            the other stages run at all of torch's threads. Sequential elsewhere. An int: that
            many workers (1 = sequential at torch's thread count). See
            :func:`~propainter_core.pipeline.run.run_inpaint`.

    Returns:
        ``[T, h, w, 3]`` uint8 at the processing size (sides rounded down to multiples of 8),
        as the official script saves its frames; a numpy array for numpy frames, a CPU tensor
        for tensor frames. Pixels outside the dilated mask equal the (resized) input exactly.

    Raises:
        InpaintInputError: bad frames, masks, settings, sizes below 128 or fp16 on the CPU.
        Cancelled: ``should_cancel()`` returned True.
    """
    try:
        settings = InpaintSettings(mask_dilation=mask_dilation, ref_stride=ref_stride,
                                   neighbor_length=neighbor_length, subvideo_length=subvideo_length,
                                   raft_iter=raft_iter, resize_ratio=resize_ratio, height=height,
                                   width=width, fp16=fp16)
    except ValueError as error:
        raise InpaintInputError(str(error)) from error
    frame_tensor = _as_tensor(frames, "frames")
    mask_tensor = _as_mask_stack(_as_tensor(masks, "masks"))
    result = run_inpaint(frame_tensor, mask_tensor, models, settings, segment_length=segment_length,
                         segment_padding=segment_padding, progress=progress,
                         should_cancel=should_cancel, cpu_bf16=cpu_bf16, workers=workers)
    return result.numpy() if isinstance(frames, np.ndarray) else result
