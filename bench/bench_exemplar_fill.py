"""How the exemplar fill's time grows with the size of what it fills: seconds and microseconds per filled pixel.

flow_fill fills the pixels no frame shows with an exemplar (patch) fill
(``nodes/ops/flow_fill/spatial_fill.py``), once per window and recursion, then carries it along
the flow. Over a large hole in a large frame it fills hundreds of thousands of pixels, a patch at a
time. This script fills a rectangle of ``--hole`` of a textured frame (the clip of
``bench_flow_fill_cancel.py``) at each of ``--sizes``, one thread, and prints the time, the time per
filled pixel and its ratio to the smallest size's (1.0 would be time linear in the pixels filled).
Wall time: run it on an idle machine and print the load beside it.

Usage: python bench/bench_exemplar_fill.py [--sizes 480x270 960x540 1920x1080] [--hole 0.2]
"""
from __future__ import annotations

import argparse
import time

import cv2

from _common import header, import_pack
from bench_flow_fill_cancel import _clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["480x270", "960x540", "1920x1080"])
    parser.add_argument("--hole", type=float, default=0.2, help="share of the frame the hole covers")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    import_pack()
    from vanish.nodes.ops.flow_fill.spatial_fill import exemplar_fill

    print(header("bench_exemplar_fill", with_torch=False, software=f"opencv {cv2.__version__}"))
    first = None
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        clip, masks = _clip(width, height, 1, args.hole)
        image, hole = clip[0].astype("float32"), masks[0]
        start = time.perf_counter()
        exemplar_fill(image, hole)
        seconds = time.perf_counter() - start
        per_pixel = seconds / hole.sum() * 1e6
        first = first or per_pixel
        print(f"{size:>10s}: {int(hole.sum()):7d} px filled in {seconds:7.2f} s, {per_pixel:6.1f} us/px "
              f"(x{per_pixel / first:.2f} the first size's)", flush=True)


if __name__ == "__main__":
    main()
