"""Which frame sizes can OpenCV's DIS and Farneback flows (used by Warp Error) take safely?

Issue 11: DIS raised a bare cv2.error on frames under 12 px; trying sizes here showed that DIS on
a 40x11 frame kills the process (segmentation fault) instead. Each size runs in a fresh
interpreter (``multiprocessing`` spawn; no external program), so a crash shows as a negative exit
code, a cv2.error as exit code 1.

    python bench/flow_min_size.py [--sides 4,8,11,12,13,16,40] [--reps 2]

nodes/ops/warp_error.py keeps ``FLOW_MIN_SIZE`` at or above the smallest side at which every
tried size was clean (recorded in bench/RESULTS.md, issue 11).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys

from _common import header


def _child(method: str, width: int, height: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(2))
    try:
        if method == "dis":
            cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
        else:  # the node's Farneback parameters (nodes/ops/warp_error.py)
            cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    except cv2.error:
        sys.exit(1)


def run_case(method: str, width: int, height: int) -> int:
    process = multiprocessing.get_context("spawn").Process(target=_child, args=(method, width, height))
    process.start()
    process.join()
    return process.exitcode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", default="1,4,8,11,12,13,16,40")
    parser.add_argument("--widths", default="", help="widths (default: --sides)")
    parser.add_argument("--methods", default="dis,farneback")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    import cv2

    print(header("OpenCV flow minimum frame size (fresh process per run)", with_torch=False,
                 software=f"opencv {cv2.__version__}"))
    sides = [int(s) for s in args.sides.split(",") if s]
    widths = [int(s) for s in args.widths.split(",") if s] or sides
    for method in args.methods.split(","):
        bad = []
        for width in widths:
            for height in sides:
                codes = [run_case(method, width, height) for _ in range(args.reps)]
                if any(codes):
                    bad.append((width, height, codes))
                print(f"{method:9s} {width:3d}x{height:<3d} codes {codes}", flush=True)
        print(f"{method}: failing sizes {bad}")


if __name__ == "__main__":
    main()
