"""Bitexact h264-mp4: are the bytes the same run to run, and what does the fix cost?

The streaming engine encodes with ``bitexact=True``. With libx264's macroblock tree on (its
default), the same frames gave different video packets from run to run: libx264 reads memory it
never wrote, so the bytes depend on what the heap held (nodes/ops/video_encode.py,
``BITEXACT_X264_PARAMS``). This script prints, for the old options (``mbtree=1``) and the new
(``mbtree=0``):

* sameness: the number of distinct files among encodes of one clip (972x540, 10 frames, with
  sound) in fresh processes whose heaps start filled with different bytes (glibc's
  ``MALLOC_PERTURB_``; see tests/bitexact_testing.py), and among repeated encodes in this process;
* cost: the time to encode 1080p 60 frames with sound (best of ``--reps``), the file's size and
  its PSNR against the frames (decoded to RGB); with ``--clip``, size and PSNR for the first 100
  frames of a real clip at crf 19, and with the new options at crf ``--crf-new`` (equal quality).

    python bench/bench_bitexact_h264.py [--reps 3] [--repeats 9] [--clip ../shared/clips/running_car/running_car.mp4]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, header, import_pack, run_in_fresh_process

sys.path.insert(0, str(ROOT / "tests"))
from bitexact_testing import MMAP_THRESHOLD, moving_frames  # noqa: E402

OLD, NEW = "mbtree=1", "mbtree=0"


def tone(seconds: float, rate: int = 44100):
    from vanish.nodes.ops.video_audio import AudioClip

    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(1).standard_normal(t.shape)
    return AudioClip(np.stack([wave, wave]).astype(np.float32), rate)


def encode(path: Path, frames: np.ndarray, params: str, crf: int = 19) -> float:
    """Seconds for one bitexact h264-mp4 encode of ``frames`` (25 fps, with sound) with ``params``."""
    from vanish.nodes.ops import video_encode as ve

    ve.BITEXACT_X264_PARAMS = params
    start = time.perf_counter()
    ve.encode_video(path, frames, 25.0, "h264-mp4", crf=crf, audio=tone(len(frames) / 25.0), bitexact=True)
    return time.perf_counter() - start


def digest_in_child(params: str, width: int, height: int, count: int) -> str:
    """Runs in a fresh process: the sha1 of one encode."""
    import_pack()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        encode(path, moving_frames(count, height, width), params)
        return hashlib.sha1(path.read_bytes()).hexdigest()


def psnr(path: Path, frames: np.ndarray) -> float:
    import av

    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    error = np.mean((decoded.astype(np.float64) - frames.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed 1080p encodes per option set")
    parser.add_argument("--repeats", type=int, default=9, help="in-process repeats of the small clip")
    parser.add_argument("--clip", type=Path, help="a real clip for the size/quality comparison")
    parser.add_argument("--crf-new", type=int, default=21, help="crf of the new options' equal-quality row")
    args = parser.parse_args()
    import_pack()
    import av

    print(header("bench_bitexact_h264: bitexact h264-mp4, same bytes run to run, and the cost",
                 with_torch=False, software=f"av {av.__version__}"))
    small = moving_frames(10, 540, 972)
    for params in (OLD, NEW):
        heaps = {run_in_fresh_process(digest_in_child, params, 972, 540, 10,
                                      env={"MALLOC_PERTURB_": str(fill), "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)})
                 for fill in (0x11, 0x5A, 0xEE)}
        with tempfile.TemporaryDirectory() as folder:
            repeated = set()
            for k in range(args.repeats):
                path = Path(folder) / f"{k}.mp4"
                encode(path, small, params)
                repeated.add(hashlib.sha1(path.read_bytes()).hexdigest())
        print(f"{params}: 972x540x10 with sound: {len(heaps)} distinct of 3 perturbed-heap processes, "
              f"{len(repeated)} distinct of {args.repeats} encodes in this process")
    big = moving_frames(60, 1080, 1920)
    times: dict[str, list[float]] = {OLD: [], NEW: []}
    with tempfile.TemporaryDirectory() as folder:
        for rep in range(args.reps):
            for params in (OLD, NEW):  # alternated, so load changes hit both
                times[params].append(encode(Path(folder) / f"{params}_{rep}.mp4", big, params))
        for params in (OLD, NEW):
            path = Path(folder) / f"{params}_0.mp4"
            print(f"{params}: 1080p x 60 frames with sound: best {min(times[params]):.2f} s "
                  f"(all {', '.join(f'{t:.2f}' for t in times[params])}), {path.stat().st_size / 1e6:.3f} MB, "
                  f"PSNR {psnr(path, big):.2f} dB")
    if args.clip is not None:
        with av.open(str(args.clip)) as container:
            real = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(100), container.decode(video=0))])
        with tempfile.TemporaryDirectory() as folder:
            for params, crf in ((OLD, 19), (NEW, 19), (NEW, args.crf_new)):
                path = Path(folder) / f"{params}_{crf}.mp4"
                encode(path, real, params, crf)
                print(f"{params} crf {crf}: {args.clip.name} {real.shape[2]}x{real.shape[1]}x{len(real)}: "
                      f"{path.stat().st_size / 1e6:.3f} MB, PSNR {psnr(path, real):.2f} dB")
    print(f"time ratio new/old (best): {min(times[NEW]) / min(times[OLD]):.2f}; "
          f"load average now {__import__('os').getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
