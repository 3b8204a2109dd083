"""Which frame sizes can libx265 (the one inside PyAV's wheel) encode without corrupting the heap?

Issue 11: at 33x17 or 34x18 (and 48x32 about half the time) glibc aborts with "corrupted size vs.
prev_size" / "free(): invalid size" during the save, at exit or at the next save. Each size is
tried here in its own fresh interpreter (``multiprocessing`` with ``spawn``; no external program),
several times: the child encodes two short clips with the options Save Video uses for h265-mp4 and
then exits normally, so an abort at any of the three moments shows as a negative exit code (the
signal). Exit code 1 is a Python error (e.g. ``avcodec_open2`` refusing the size).

    python bench/x265_min_size.py [--reps 3] [--sides 16,34,48,64,128] [--widths ...]
    python bench/x265_min_size.py --sides "" --random 150 --low 64 --high 256

Prints one line per size: how many runs ended cleanly / aborted / errored, and the smallest width
and height at and above which every tried size was clean. nodes/ops/video_encode.py keeps its
``H265_MIN_SIZE`` at or above that figure (recorded in bench/RESULTS.md).
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import sys

from _common import header

# the options Save Video passes for h265-mp4 (nodes/ops/video_encode.py FORMATS["h265-mp4"])
OPTIONS = {"preset": "medium", "x265-params": "log-level=error", "crf": "19"}
FRAMES = 8


def encode_twice(width: int, height: int) -> None:
    """Runs in the child: two in-memory h265 mp4 encodes of noise at ``width`` x ``height``."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(2):
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4") as container:
            stream = container.add_stream("libx265", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = dict(OPTIONS)
            for index in range(FRAMES):
                rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))


def _child(width: int, height: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # glibc's abort message and x265's warnings: the exit code says enough
    try:
        encode_twice(width, height)
    except Exception:  # noqa: BLE001 - an encoder refusal is a result, reported as exit code 1
        sys.exit(1)


def run_case(width: int, height: int) -> int:
    """Exit code of one fresh child: 0 clean, 1 Python error, negative = killed by that signal."""
    process = multiprocessing.get_context("spawn").Process(target=_child, args=(width, height))
    process.start()
    process.join()
    return process.exitcode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--sides", default="16,18,24,32,34,48,62,64,66,128",
                        help="comma-separated heights (and widths, unless --widths is given)")
    parser.add_argument("--widths", default="", help="comma-separated widths (default: --sides)")
    parser.add_argument("--random", type=int, default=0,
                        help="also this many random even sizes with both sides in --low..--high")
    parser.add_argument("--low", type=int, default=64)
    parser.add_argument("--high", type=int, default=256)
    parser.add_argument("--pairs", default="", help="extra WxH sizes, comma-separated (e.g. 33x17)")
    args = parser.parse_args()
    import av

    print(header("libx265 minimum frame size (fresh process per run)", with_torch=False,
                 software=f"av {av.__version__}, libavcodec {av.library_versions['libavcodec']}"))
    sides = [int(s) for s in args.sides.split(",") if s]
    widths = [int(s) for s in args.widths.split(",") if s] or sides
    sizes = [(w, h) for w in widths for h in sides]
    sizes += [tuple(int(v) for v in p.split("x")) for p in args.pairs.split(",") if p]
    rng = random.Random(11)
    # even sizes only: Save Video pads odd sizes by one pixel before x265 sees them (4:2:0)
    sizes += [(2 * rng.randint(args.low // 2, args.high // 2), 2 * rng.randint(args.low // 2, args.high // 2))
              for _ in range(args.random)]
    bad: list[tuple[int, int]] = []
    for width, height in sizes:
        codes = [run_case(width, height) for _ in range(args.reps)]
        aborted = sum(c < 0 for c in codes)
        errored = sum(c > 0 for c in codes)
        print(f"{width:4d}x{height:<4d} clean {codes.count(0)}/{len(codes)}  aborted {aborted}  "
              f"errored {errored}  codes {codes}", flush=True)
        if aborted or errored:
            bad.append((width, height))
    print(f"failing sizes: {bad}")
    print(f"largest failing width {max((w for w, _ in bad), default=0)}, "
          f"largest failing height {max((h for _, h in bad), default=0)}")


if __name__ == "__main__":
    main()
