"""Speed and colour fidelity of the video nodes' PyAV decode/encode on running_car.mp4.

Prints: hardware and commit; decode speed of the whole clip (972x540, 292 frames) into a float
IMAGE tensor; encode speed per output format; per-channel mean shift (levels of 255) of an
encode -> decode round trip of the real frames and of a colour chart, next to the shift of
swscale's default conversion path (what loaders that call ``to_ndarray("rgb24")`` get).

Bar (issue 3): no channel's mean moves by more than 1 level in 255.

Usage: python bench/bench_video_io.py [--frames 50]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from shared_paths import CLIPS_DIR  # noqa: E402

from _common import header, import_pack  # noqa: E402


def channel_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 3).astype(np.float64).mean(0) - b.reshape(-1, 3).astype(np.float64).mean(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=50, help="frames per encode test")
    args = parser.parse_args()
    import_pack()
    import av

    from vanish.nodes.ops import video_decode as vd
    from vanish.nodes.ops import video_encode as ve
    from vanish.nodes.ops import video_frames as vf

    print(header("bench_video_io", software=f"av {av.__version__}"))
    clip = CLIPS_DIR / "running_car" / "running_car.mp4"
    info = vd.probe_video(clip)
    start = time.perf_counter()
    frames, _ = vf.decode_to_tensors(clip, info, vd.FrameSelection(), keep_alpha=False, budget=2**40)
    took = time.perf_counter() - start
    print(f"decode {clip.name}: {frames.shape[0]} frames {info.width}x{info.height} in {took:.2f} s "
          f"= {frames.shape[0] / took:.1f} fps into float32 IMAGE")
    real = (frames[:args.frames].numpy() * 255).round().astype(np.uint8)
    del frames
    colours = np.random.default_rng(7).integers(0, 256, (4, 6, 3)).astype(np.uint8)
    chart = np.repeat(np.repeat(colours, 32, 0), 32, 1)
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'format':16} {'encode fps':>10} {'real shift R,G,B':>24} {'chart shift R,G,B':>24}")
        for fmt, spec in ve.FORMATS.items():
            target = Path(folder) / f"real.{fmt}.{spec.extension}"
            start = time.perf_counter()
            ve.encode_video(target, real, 25.0, fmt)
            fps = len(real) / (time.perf_counter() - start)
            back = np.stack(list(vd.iter_selected_frames(target, vd.FrameSelection())))
            chart_file = Path(folder) / f"chart.{fmt}.{spec.extension}"
            ve.encode_video(chart_file, np.stack([chart] * 3), 25.0, fmt)
            chart_back = np.stack(list(vd.iter_selected_frames(chart_file, vd.FrameSelection())))
            print(f"{fmt:16} {fps:10.1f} {np.array2string(channel_shift(back, real), precision=2):>24} "
                  f"{np.array2string(channel_shift(chart_back, chart), precision=2):>24}")
    yuv = av.VideoFrame.from_ndarray(chart, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=1, dst_color_range=1)
    naive = yuv.to_ndarray(format="rgb24", src_colorspace=1, src_color_range=1)
    print(f"chart through yuv420p, swscale default decode: shift "
          f"{np.array2string(channel_shift(naive, chart), precision=2)}; ours: "
          f"{np.array2string(channel_shift(vd.frame_to_array(yuv), chart), precision=2)}")


if __name__ == "__main__":
    main()
