"""What the engine holds does not grow with the clip: the behaviour behind the flat-memory bench.

Measured with tracemalloc, which sees every numpy array (the engine's frames and masks are numpy
until they reach the backend). A clip whose object is visible only in its first segment keeps the
backend's share the same for a short and a long clip, so what differs is what the engine itself
keeps per segment: reading, stitching and encoding a window of full-size frames at a time, and
the few preview frames it returns.
"""
from __future__ import annotations

import tracemalloc

import numpy as np

from vanish.nodes import engine
from vanish.nodes.ops import video_encode as ve

HEIGHT, WIDTH, WINDOW = 360, 640, 24  # a window of frames is 16.6 MB as uint8


def _clip(folder, frames: int):
    ramp = np.linspace(0, 255, WIDTH, dtype=np.float32)[None, :, None]
    video = np.empty((frames, HEIGHT, WIDTH, 3), np.uint8)
    masks = np.zeros((frames, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(frames):
        video[i] = np.clip(ramp + 3 * i + np.arange(HEIGHT)[:, None, None] * 0.2, 0, 255).astype(np.uint8)
    masks[:8, 150:200, 100:160] = 255  # the object shows in the first frames only
    return (ve.encode_video(folder / f"clip{frames}.mkv", video, 25.0, "ffv1-mkv"),
            ve.encode_video(folder / f"mask{frames}.mkv", masks, 25.0, "ffv1-mkv"))


def _peak(tmp_path, frames: int) -> tuple[int, int]:
    clip, mask = _clip(tmp_path, frames)
    settings = engine.RemovalSettings(inpaint=engine.RunSettings(backend="flow_fill", crop="auto"),
                                      mask=engine.MaskOptions(grow=2, feather=0.0),
                                      output=engine.OutputOptions(format="ffv1-mkv"), window=WINDOW, context=0)
    tracemalloc.start()
    try:
        result = engine.run_removal(clip, tmp_path / f"out{frames}.mkv", settings, masks=mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result.segments_run


def test_a_long_clip_holds_no_more_than_a_short_one(tmp_path):
    short, segments_short = _peak(tmp_path, 2 * WINDOW)
    long, segments_long = _peak(tmp_path, 10 * WINDOW)
    assert (segments_short, segments_long) == (2, 10)
    window = WINDOW * HEIGHT * WIDTH * 3
    # keeping one more window than the short clip does (e.g. previews that are views into their
    # windows: eight of them held eight windows) would add 16.6 MB
    assert long < short + window / 2, f"{long / 2**20:.1f} MiB vs {short / 2**20:.1f} MiB"


def test_the_memory_probe_counts_the_page_cache_as_available():
    """The pre-flight check reads MemAvailable: MemFree alone was 1.2 GiB of 24 after the benches
    had read big files, and ProPainter refused a segment that fitted easily."""
    import torch

    from vanish.nodes.engine.segments import _free_memory

    with open("/proc/meminfo", encoding="ascii") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle}
    probed = _free_memory(torch.device("cpu"))
    assert probed >= info["MemFree"]
    assert abs(probed - info["MemAvailable"]) < 0.1 * info["MemTotal"]
