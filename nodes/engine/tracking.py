"""SAM 2 over a file: forward and backward passes reading frames lazily, masks into a bit-packed store.

The tracking itself is ``sam2_session.track_into`` (the SAM 2 Propagate node's code); this module
gives it frames decoded window by window (:class:`SourceImages`) and a mask store on disk
(:class:`~.masks.MaskStore`), so neither the clip nor its masks are ever held in RAM.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..ops.sam2_prompts import PromptError, PromptSet
from .errors import Cancelled, EngineError
from .masks import MaskStore
from .sources import FrameSource

#: Frames decoded at once for SAM 2 (it asks for one frame at a time, forwards or backwards).
TRACK_WINDOW = 16


class SourceImages:
    """IMAGE-like view of a source for ``LazyFrames``: ``shape`` and ``[t]`` -> float ``[H, W, 3]``.

    Decodes :data:`TRACK_WINDOW` frames at a time in the direction of travel, and polls
    ``should_cancel`` on every frame.
    """

    def __init__(self, source: FrameSource, should_cancel: Callable[[], bool] | None = None) -> None:
        self.source = source
        self.shape = (source.num_frames, source.height, source.width, 3)
        self.should_cancel = should_cancel
        self._start, self._frames = 0, np.zeros((0, 1, 1, 3), np.uint8)
        self._last = -1

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("cancelled while tracking with SAM 2")
        if not self._start <= index < self._start + len(self._frames):
            backwards = index < self._last
            first = max(0, index - TRACK_WINDOW + 1) if backwards else index
            last = min(self.source.num_frames, first + TRACK_WINDOW)
            self._frames = None  # free the old window before decoding the next
            self._start, self._frames = first, self.source.read(first, last)
        self._last = index
        frame = self._frames[index - self._start]
        return torch.from_numpy(np.divide(frame, np.float32(255), dtype=np.float32))  # [H, W, 3]


def check_prompts(prompts: PromptSet, source: FrameSource) -> PromptSet:
    """The prompts scaled to the clip and checked against it (frames, coordinates)."""
    if not isinstance(prompts, PromptSet):
        raise EngineError("prompts", f"is a {type(prompts).__name__}, not a PromptSet.",
                          "parse the prompts with PromptSet.from_json.")
    try:
        scaled = prompts.scaled_to(source.width, source.height)
        scaled.validate(source.num_frames, (source.width, source.height))
    except PromptError as exc:
        raise EngineError("prompts", exc.problem, exc.fix) from exc
    return scaled


def track_to_store(source: FrameSource, prompts: PromptSet, sam2, folder: Path,
                   progress: Callable[[int, int], None] | None,
                   should_cancel: Callable[[], bool] | None) -> MaskStore:
    """Masks of every prompted object on every frame, in ``folder`` (reused when already complete).

    Args:
        sam2: a ``sam2_loader.SAM2Handle``.
    """
    from ..ops import sam2_session

    folder.mkdir(parents=True, exist_ok=True)
    shape = (len(prompts.objects), source.num_frames, source.height, source.width)
    done = folder / "done.json"
    bits = folder / "objects.bits"
    if done.exists() and json.loads(done.read_text()).get("shape") == list(shape) and bits.exists():
        return MaskStore(bits, *shape)
    if not hasattr(sam2, "acquire"):
        raise EngineError("sam2", f"is a {type(sam2).__name__}; prompts need a loaded SAM 2 model.",
                          "load SAM 2 with sam2_loader.load_sam2 (or the SAM 2 Model Loader node).")
    store = MaskStore(bits, *shape, mode="w+")
    covered = np.zeros(shape[:2], bool)
    images = SourceImages(source, should_cancel)
    with sam2.acquire() as predictor:
        sam2_session.track_into(predictor, images, prompts, store, covered, sam2_session.TrackOptions(),
                                progress)
    store.close()
    temp = folder / ".done.json.tmp"
    temp.write_text(json.dumps({"shape": list(shape), "objects": [o.id for o in prompts.objects]}))
    os.replace(temp, done)
    return MaskStore(bits, *shape)
