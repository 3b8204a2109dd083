"""Issue 11: how long a cancel takes to land, and the guided filter that made it possible.

Prints, for the ProPainter pipeline with random-weight networks (the work, not the values,
matters), the seconds from a cancel request made mid-stage to the ``Cancelled`` exception; and
the time per frame of the Mask Dilate & Blur guided filter (ours, by running sums) against
``kornia.filters.guided_blur`` (which it replaced) at two radii; and, with ``--flush``, how long a
cancel made while the encoder drains after the last frame takes to land (issue 11 follow-up,
session 7). Usage::

    python bench/bench_cancel.py [--size 960x540] [--frames 6]
    python bench/bench_cancel.py --flush [--flush-frames 30] [--flush-sizes 1920x1080,3840x2160]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from _common import header, import_pack


def cancel_latencies(frames: int) -> None:
    import threading

    import_pack()  # the package 'vanish', as ComfyUI loads it
    import vanish.propainter_core as core
    from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
    from vanish.propainter_core.generator import GeneratorConfig, build_generator
    from vanish.propainter_core.raft import RaftConfig, build_raft

    torch.manual_seed(0)
    models = core.ProPainterModels(raft=build_raft(RaftConfig()).eval(),
                                   flow_completion=build_flow_completion(FlowCompletionConfig()).eval(),
                                   generator=build_generator(GeneratorConfig()).eval(),
                                   device=torch.device("cpu"), dtype=torch.float32)
    images = torch.randint(0, 256, (frames, 128, 160, 3), dtype=torch.uint8)
    masks = torch.zeros(frames, 128, 160)
    masks[:, 40:80, 50:100] = 1
    stages = {"raft refinement": models.raft.update_block.encoder, "raft encoders": models.raft.fnet,
              "flow completion": models.flow_completion, "image propagation": models.generator.img_prop_module,
              "generator window": models.generator.encoder}
    print("| stage | seconds from the cancel request to Cancelled |\n|---|---|")
    for name, module in stages.items():
        flag, set_at = threading.Event(), []

        def arm(*_args) -> None:
            if not set_at:
                set_at.append(None)
                threading.Timer(0.2, lambda: (set_at.append(time.monotonic()), flag.set())).start()

        handle = module.register_forward_pre_hook(arm)
        try:
            core.run_inpaint(images, masks, models, core.InpaintSettings(raft_iter=12 if "raft" in name else 1),
                             should_cancel=flag.is_set)
            print(f"| {name} | finished before the request |")
        except core.Cancelled:
            print(f"| {name} | {time.monotonic() - set_at[1]:.3f} |")
        finally:
            handle.remove()


def guided_filter_times(height: int, width: int) -> None:
    import kornia.filters

    from vanish.nodes.ops import mask_ops

    guide, source = torch.rand(1, 3, height, width), torch.rand(1, 1, height, width)
    print(f"\n| guided filter {width}x{height}, radius | ours s/frame | kornia s/frame |\n|---|---|---|")
    for radius in (8, 64):
        start = time.perf_counter()
        mask_ops.guided_filter(guide[0], source[0, 0], radius, 1e-3)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        kornia.filters.guided_blur(guide, source, 2 * radius + 1, 1e-3)
        theirs = time.perf_counter() - start
        print(f"| {radius} | {ours:.2f} | {theirs:.2f} |")


CANCEL_INTO_TAIL_S = 0.13
"""When the cancel comes after the last frame: not a multiple of the 0.05 s poll, whose steps start
with the tail, so the figure is not a lucky hit just after a poll began (or just before one)."""


class _MovingTexture:
    """A lazy ``[T, H, W, 3]`` uint8 clip: a random 8-px texture sliding 4 px per frame (easy
    content for the encoder, like the issue's measurement; a 4K clip is never all in memory)."""

    def __init__(self, frames: int, width: int, height: int) -> None:
        import numpy as np

        base = np.random.default_rng(0).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        self._image = np.repeat(np.repeat(base, 8, 0), 8, 1)[:height, :width]
        self._frames = frames

    def __len__(self) -> int:
        return self._frames

    def __getitem__(self, index: int):
        import numpy as np

        if not 0 <= index < self._frames:
            raise IndexError(index)
        return np.roll(self._image, 4 * index, axis=1)


def flush_latencies(frames: int, sizes: list[tuple[int, int]]) -> None:
    """Per size and codec: the tail after the last frame (drain, close, read-back), which is what a
    cancel waited for before the fix, and the seconds from a cancel made 0.13 s into it to the
    exception now (plus how long the abandoned thread ran on, and that no file was left)."""
    import tempfile
    import threading
    from pathlib import Path

    import_pack()
    from vanish.nodes.ops import encode_finish
    from vanish.nodes.ops import video_encode as ve

    class Stop(Exception):
        pass

    print(f"\n| size | codec | frames | encode to the last frame s | tail after it s (cancel waited this "
          f"before) | cancel {CANCEL_INTO_TAIL_S} s into the tail, landed after s | thread ran on s | file left |"
          "\n|---|---|---|---|---|---|---|---|")
    for width, height in sizes:
        for fmt in ("h264-mp4", "h265-mp4"):
            clip = _MovingTexture(frames, width, height)
            with tempfile.TemporaryDirectory() as folder:
                marks: dict[str, float] = {}

                def last(index: int) -> None:
                    if index == frames - 1:
                        marks["last"] = time.monotonic()

                start = time.monotonic()
                ve.encode_video(Path(folder) / "whole.mp4", clip, 25.0, fmt, on_frame=last)
                tail = time.monotonic() - marks["last"]
                flag, timer = threading.Event(), None

                def request() -> None:
                    marks["set"] = time.monotonic()
                    flag.set()

                def arm(index: int) -> None:
                    nonlocal timer
                    if index == frames - 1:
                        timer = threading.Timer(CANCEL_INTO_TAIL_S, request)
                        timer.start()

                def check() -> None:
                    if flag.is_set():
                        raise Stop

                target = Path(folder) / "cancelled.mp4"
                try:
                    ve.encode_video(target, clip, 25.0, fmt, on_frame=arm, check_cancel=check)
                    landed = "finished first"
                except Stop:
                    landed = f"{time.monotonic() - marks['set']:.3f}"
                stopped = time.monotonic()
                for thread in threading.enumerate():
                    if thread.name == encode_finish.THREAD_NAME:
                        thread.join()
                ran_on = time.monotonic() - stopped
                print(f"| {width}x{height} | {ve.FORMATS[fmt].codec} | {frames} | {marks['last'] - start:.2f} "
                      f"| {tail:.2f} | {landed} | {ran_on:.2f} | {'yes' if target.exists() else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540", help="guided-filter frame size, WxH")
    parser.add_argument("--frames", type=int, default=6, help="frames of the ProPainter clip")
    parser.add_argument("--flush", action="store_true",
                        help="measure only the cancel during the encoder's final drain")
    parser.add_argument("--flush-frames", type=int, default=30, help="frames per encode with --flush")
    parser.add_argument("--flush-sizes", default="1920x1080,3840x2160", help="WxH,... with --flush")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(header("bench_cancel: cancel latency (issue 11) and the guided filter"))
    print(f"load average: {os.getloadavg()}")
    if args.flush:
        sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.flush_sizes.split(",")]
        flush_latencies(args.flush_frames, sizes)  # type: ignore[arg-type]
        print(f"load average: {os.getloadavg()}")
        return
    cancel_latencies(args.frames)
    guided_filter_times(height, width)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
