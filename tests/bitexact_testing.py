"""Encodes in fresh processes whose heap starts out filled with a chosen byte.

glibc fills every block ``malloc`` hands out with ``MALLOC_PERTURB_``'s byte (inverted), and
``MALLOC_MMAP_THRESHOLD_`` makes frame-sized blocks come from that heap too (above the
threshold glibc maps fresh, zeroed pages instead). An encoder that reads memory it never wrote
then sees different bytes in two such processes, every time: the run-to-run difference that
uninitialised memory causes only now and then (it depends on what the process freed before)
becomes certain. Both variables are read when the process starts, so the encode runs in a
spawned child (:func:`fresh_process.run_fresh`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MMAP_THRESHOLD = 32 << 20
"""glibc's largest allowed ``M_MMAP_THRESHOLD`` on 64-bit systems (larger values are ignored)."""


def moving_frames(count: int, height: int, width: int) -> np.ndarray:
    """uint8 ``[count, height, width, 3]``: smooth patterns drifting at different speeds, with grain."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        red = 128 + 100 * np.sin((x + 7 * i) / 37.0) * np.cos((y - 3 * i) / 23.0)
        green = 128 + 100 * np.sin((x - 5 * i) / 19.0 + y / 41.0)
        blue = (x * 0.1 + y * 0.1 + i * 4) % 256
        grain = rng.normal(0.0, 6.0, (height, width, 3))
        frames.append(np.clip(np.stack([red, green, blue], -1) + grain, 0, 255).astype(np.uint8))
    return np.stack(frames)


def encode_in_child(path: str, fmt: str, width: int, height: int, count: int) -> str:
    """Encode :func:`moving_frames` with a tone, ``bitexact=True``, to ``path`` (run in a child)."""
    import conftest  # noqa: F401 - imports the pack as ``vanish``
    from vanish.nodes.ops import video_encode as ve
    from vanish.nodes.ops.video_audio import AudioClip

    rate = 44100
    t = np.arange(int(count / 25.0 * rate) + rate // 2) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(1).standard_normal(t.shape)
    sound = AudioClip(np.stack([wave, wave]).astype(np.float32), rate)
    ve.encode_video(Path(path), moving_frames(count, height, width), 25.0, fmt, audio=sound, bitexact=True)
    return f"{os.environ.get('MALLOC_PERTURB_')}: {Path(path).stat().st_size} bytes"
