"""How often flow_fill polls its cancel on a large clip: the longest gap between two polls, and where it ended.

The brief asks that a cancel is honoured within 2 seconds everywhere. flow_fill polls
``should_cancel`` between frames and flows, inside the spatial fill, the flow completion's
membrane, the traces' steps and the pair match's offsets; over a large hole in a large frame each
of those stages takes long. This script runs the backend on a textured pan (``--size``, ``--frames``)
with a rectangle of ``--hole`` of the frame sliding right, polls never cancelling, and prints the
total time, the number of polls and the longest gap between two of them with the function that
polled at its end. Wall time: run it on an idle machine and print the load beside it.

Usage: python bench/bench_flow_fill_cancel.py [--size 1920x1080] [--frames 3] [--hole 0.2]
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from _common import header, import_pack


def _clip(width: int, height: int, frames: int, hole: float) -> tuple[np.ndarray, np.ndarray]:
    """A textured pan (6 px a frame) ``[T, H, W, 3]`` uint8 and a rectangle of ``hole`` of the frame moving 12 px a frame."""
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width + 6 * frames, 3)).astype(np.float32), (0, 0), 2.0)
    texture = np.clip(128 + noise * (40 / noise.std()), 0, 255).astype(np.uint8)
    clip = np.stack([texture[:, 6 * i:6 * i + width] for i in range(frames)])
    masks = np.zeros((frames, height, width), bool)
    rows, cols = int(height * np.sqrt(hole)), int(width * np.sqrt(hole))
    for i in range(frames):
        y0, x0 = (height - rows) // 2, width // 4 + 12 * i
        masks[i, y0:y0 + rows, x0:x0 + cols] = True
    return clip, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--hole", type=float, default=0.2, help="share of the frame the hole covers")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    cv2.setNumThreads(1)
    import_pack()
    from vanish.nodes.ops.flow_fill import flow_fill_inpaint

    print(header("bench_flow_fill_cancel", with_torch=False, software=f"opencv {cv2.__version__}"))
    clip, masks = _clip(width, height, args.frames, args.hole)
    polls: list[float] = []
    where: list[str] = []
    start = time.perf_counter()

    def should_cancel() -> bool:
        # The function that polled (check_cancel's caller); frames are read cheaply, before the clock.
        caller = sys._getframe(1)
        if caller.f_code.co_name == "check_cancel":
            caller = caller.f_back
        where.append(caller.f_code.co_name)
        polls.append(time.perf_counter() - start)
        return False

    flow_fill_inpaint(clip, masks, should_cancel=should_cancel)
    total = time.perf_counter() - start
    times = np.array([0.0] + polls + [total])
    gaps = np.diff(times)
    longest = int(gaps.argmax())
    ended = where[longest] if longest < len(where) else "(the end of the fill)"
    print(f"case: {width}x{height} x {args.frames} frames, hole {masks[0].mean():.0%} of the frame, one thread")
    print(f"  took {total:.1f} s, {len(polls)} polls, longest gap {gaps.max():.2f} s (ended at a poll in {ended}), "
          f"median gap {np.median(gaps):.3f} s; bar 2 s")


if __name__ == "__main__":
    main()
