"""Issue 11: how long a cancel takes to land, and the guided filter that made it possible.

Prints, for the ProPainter pipeline with random-weight networks (the work, not the values,
matters), the seconds from a cancel request made mid-stage to the ``Cancelled`` exception; and
the time per frame of the Mask Dilate & Blur guided filter (ours, by running sums) against
``kornia.filters.guided_blur`` (which it replaced) at two radii. Usage::

    python bench/bench_cancel.py [--size 960x540] [--frames 6]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540", help="guided-filter frame size, WxH")
    parser.add_argument("--frames", type=int, default=6, help="frames of the ProPainter clip")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(header("bench_cancel: cancel latency (issue 11) and the guided filter"))
    print(f"load average: {os.getloadavg()}")
    cancel_latencies(args.frames)
    guided_filter_times(height, width)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
