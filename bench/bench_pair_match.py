"""Memory and time of flow_fill's pair match on a large hole: matched in bands of rows, or all pixels at once.

The pair match (``nodes/ops/flow_fill/pair_match.py``) cuts each hole pixel's forward source
surroundings (15x15 grey) and backward patch once, about 1.1 kB a pixel with the cost arrays. A
hole of a fifth of a 1920x1080 frame is 400,000 pixels, so the match runs in bands of at most
``BAND_PIXELS`` pixels (whole rows plus the neighbours their averaged costs read). This script
builds a window of textured 1080p frames, lands every hole pixel's nearest sources a few px off
in opposite directions (a per-step bias of the flow), and measures the match as the node runs it
and with one band for all pixels: peak memory the match allocates (``tracemalloc``; numpy and
OpenCV's arrays are counted), seconds, and whether both give the same landings.

Usage: python bench/bench_pair_match.py [--size 1920x1080] [--hole 0.2]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import cv2
import numpy as np

from _common import header, import_pack


FRAMES = 6  # the hole is in frame 2; its nearest sources lie 3 frames ahead (5) and 2 back (0)


def _case(width: int, height: int, hole: float):
    """Frames ``[6, H, W, 3]``, and the landings / steps / places of a hole of ``hole`` of the frame."""
    frames = FRAMES
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (height, width + 8 * frames, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.5)
    texture = np.clip(128.0 + texture * (30.0 / texture.std()), 0, 255)
    stack = np.stack([texture[:, 8 * i:8 * i + width] for i in range(frames)]).astype(np.float32)
    # The hole: a centred rectangle; its pixels' sources lie in the first and last frame.
    rows = int(np.sqrt(hole * height * width * height / width))
    cols = int(hole * height * width / rows)
    y0, x0 = (height - rows) // 2, (width - cols) // 2
    ys, xs = (a.ravel() for a in np.mgrid[y0:y0 + rows, x0:x0 + cols])
    steps_f = np.full(ys.size, 3.0, np.float32)
    steps_b = np.full(ys.size, 2.0, np.float32)
    # The texture moves 8 px a frame to the left; the traces say 7.4 (forward 1.8 px short, backward 1.2).
    first_f = np.stack([np.full(ys.size, 5), ys, xs - 8 * 3 + 1.8], 1).astype(np.float32)
    first_b = np.stack([np.zeros(ys.size), ys, xs + 8 * 2 - 1.2], 1).astype(np.float32)
    return stack, (first_f, first_b, steps_f, steps_b, ys, xs)


def _measure(matcher, args, band_pixels: int, pair_match) -> tuple[float, float, np.ndarray]:
    """Peak MiB allocated and seconds of one match with ``BAND_PIXELS = band_pixels``; the moved forward landings."""
    kept = pair_match.BAND_PIXELS
    pair_match.BAND_PIXELS = band_pixels
    try:
        tracemalloc.start()
        start = time.perf_counter()
        moved_f, _, _ = matcher.match(*args)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        pair_match.BAND_PIXELS = kept
    return peak / 2 ** 20, seconds, moved_f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--hole", type=float, default=0.2, help="share of the frame the hole covers")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    cv2.setNumThreads(1)
    import_pack()
    from vanish.nodes.ops.flow_fill import pair_match

    print(header("bench_pair_match", with_torch=False, software=f"opencv {cv2.__version__}, numpy {np.__version__}"))
    frames, case = _case(width, height, args.hole)
    matcher = pair_match.PairMatcher(frames, np.zeros(frames.shape[:3], bool))
    print(f"case: {width}x{height}, {FRAMES} frames, hole {case[4].size} px ({args.hole:.0%} of the frame), "
          f"one thread")
    banded = _measure(matcher, case, pair_match.BAND_PIXELS, pair_match)
    whole = _measure(matcher, case, 10 ** 12, pair_match)
    truth = case[0][:, 2] - 1.8  # where the forward landings belong
    for name, (peak, seconds, moved) in ((f"bands of {pair_match.BAND_PIXELS} px", banded), ("one band", whole)):
        print(f"  {name:22s} peak {peak:8.1f} MiB  {seconds:6.2f} s  forward landings off by "
              f"{np.abs(moved[:, 2] - truth).mean():.3f} px")
    print(f"  peak ratio banded / one band: {banded[0] / whole[0]:.3f}; time ratio {banded[1] / whole[1]:.2f}; "
          f"largest difference between the two: {np.abs(banded[2] - whole[2]).max():.2e} px")


if __name__ == "__main__":
    main()
