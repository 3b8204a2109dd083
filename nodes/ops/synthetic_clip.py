"""A clip whose true background is known: the command line's embedded default job and the benches.

ComfyUI-free. The scene is the one ``bench/demo_remove.py`` draws (a panning textured background
with a red ball crossing it), made one frame at a time so a clip of any length costs the memory of
one frame: the background is one canvas of twice the frame width, read with a sub-pixel shift and
mirrored at its ends (OpenCV's reflect border), so the pan goes on for as many frames as asked.

    scene = SyntheticScene(frames=40, width=320, height=180)
    scene.frame(i)   # uint8 [H, W, 3] RGB with the ball
    scene.mask(i)    # uint8 [H, W] 255 on the ball
    scene.truth(i)   # uint8 [H, W, 3] the background alone (what removal should give)
    write_clip(folder, scene)  -> (folder/clip.mp4, folder/mask.mkv)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import video_encode as ve

#: Pixels per frame the background moves: sub-pixel, so the flow is not a trivial integer shift.
PAN = 2.6
#: The mask is lossless (FFV1) so its edge is exactly the drawn ball.
MASK_FORMAT = "ffv1-mkv"
CLIP_FORMAT = "h264-mp4"
CLIP_CRF = 16


@dataclass
class SyntheticScene:
    """A textured background panning left under a red ball that crosses the frame once."""

    frames: int
    width: int
    height: int
    seed: int = 7

    def __post_init__(self) -> None:
        if self.frames < 1 or self.width < 16 or self.height < 16:
            raise ValueError(f"a synthetic clip needs >= 1 frame and >= 16x16 pixels, got "
                             f"{self.frames} frames of {self.width}x{self.height}")
        rng = np.random.default_rng(self.seed)
        canvas_w = 2 * self.width
        noise = cv2.GaussianBlur(rng.uniform(0, 1, (self.height, canvas_w, 3)).astype(np.float32),
                                 (0, 0), 3)
        ys, xs = np.mgrid[:self.height, :canvas_w].astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin(xs / 9.0)[..., None] * np.array([0.6, 0.3, 0.1], np.float32)
        sky = np.clip(ys / self.height, 0, 1)[..., None] * np.array([0.1, 0.3, 0.5], np.float32)
        canvas = np.clip((noise - noise.mean()) * 4 + stripes * 0.6 + sky + 0.15, 0, 1)  # [H, 2W, 3]
        self._canvas = (canvas * 255).round().astype(np.uint8)  # uint8: a 1080p frame in ~30 ms
        self.radius = max(self.height // 7, 2)

    def truth(self, index: int) -> np.ndarray:
        """The background of frame ``index``, uint8 ``[H, W, 3]`` RGB."""
        shift = np.float32([[1, 0, -PAN * index], [0, 1, 0]])
        return cv2.warpAffine(self._canvas, shift, (self.width, self.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)

    def centre(self, index: int) -> tuple[int, int]:
        """The ball's centre ``(x, y)`` in frame ``index`` (where a click selects it)."""
        cx = int(self.width * 0.15 + self.width * 0.7 * index / max(self.frames - 1, 1))
        cy = int(self.height * 0.55 + self.height * 0.2 * np.sin(index / 5.0))
        return cx, cy

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` with the ball, uint8 ``[H, W, 3]`` RGB."""
        image = self.truth(index)
        cv2.circle(image, self.centre(index), self.radius, (210, 30, 40), -1, lineType=cv2.LINE_AA)
        return image

    def mask(self, index: int) -> np.ndarray:
        """255 on the ball of frame ``index``, else 0: uint8 ``[H, W]``."""
        mask = np.zeros((self.height, self.width), np.uint8)
        cv2.circle(mask, self.centre(index), self.radius, 255, -1, lineType=cv2.LINE_AA)
        return mask


class _LazyFrames(Sequence):
    """``len`` and ``[i]`` over frames made on demand (what the encoder iterates)."""

    def __init__(self, count: int, make: Callable[[int], np.ndarray]) -> None:
        self._count, self._make = count, make

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[override]
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._make(index)


def write_clip(folder: Path, scene: SyntheticScene, fps: float = 25.0, *,
               on_frame: Callable[[int], None] | None = None,
               check_cancel: Callable[[], None] | None = None) -> tuple[Path, Path]:
    """Encode ``folder/clip.mp4`` (H.264) and ``folder/mask.mkv`` (lossless); both must be new.

    ``folder`` must exist. Memory: one frame at a time, whatever ``scene.frames`` is.
    ``check_cancel`` (raises to cancel) is polled after every frame of both files and while each
    encoder finishes; ``on_frame`` sees the clip's frames.
    """
    def clip_frame(index: int) -> None:
        if check_cancel is not None:
            check_cancel()
        if on_frame is not None:
            on_frame(index)

    clip, mask = folder / f"clip.{ve.FORMATS[CLIP_FORMAT].extension}", folder / "mask.mkv"
    ve.encode_video(clip, _LazyFrames(scene.frames, scene.frame), fps, CLIP_FORMAT, crf=CLIP_CRF,
                    on_frame=clip_frame, check_cancel=check_cancel)
    grey = _LazyFrames(scene.frames, lambda i: np.repeat(scene.mask(i)[..., None], 3, axis=2))
    ve.encode_video(mask, grey, fps, MASK_FORMAT, check_cancel=check_cancel,
                    on_frame=None if check_cancel is None else lambda _index: check_cancel())
    return clip, mask
