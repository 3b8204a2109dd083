"""Peak working memory of ProPainter Inpaint for 400 vs 100 frames at the same size.

The issue's bar: memory for 400 frames at most 1.25x that for 100 frames. Each run is a fresh
process (multiprocessing, spawn) that samples its resident memory every 2 ms during the inpaint call.
The part that must grow with the clip — the output IMAGE (float32), the runner's uint8 copy of the
input, the backend's uint8 result, its holes and the returned mask (bool) — is computed exactly and
subtracted: what remains is the working memory (flows, windows, features, network activations),
the CPU stand-in for accelerator memory, which streaming must keep independent of the clip length. Both numbers are printed.

Backends: flow_fill, and ProPainter with random weights (no files needed; raft_iter lowered to
keep the CPU run short; memory does not depend on the weights' values).

For flow_fill it also prints what the runner's memory plan (``inpaint_runner.plan_flow_fill``)
estimated against what the run took besides the output IMAGE: the plan must not fall short
(``--size 960x540 --frames 40 120 --segment 0`` measures it at a size where the window dominates).

Usage: python bench/bench_inpaint_memory.py [--backends flow_fill propainter] [--size 192x128]
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
import sys
import threading
import time
from pathlib import Path

from _common import header, run_in_fresh_process

ROOT = Path(__file__).resolve().parents[1]


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(backend: str, frames: int, width: int, height: int, segment: int) -> dict:
    """One measured run, in its own process (see ``measure``); returns its figures."""
    sys.path.insert(0, str(ROOT / "bench"))
    from _common import import_pack

    import_pack()
    import torch

    from vanish.nodes.ops import inpaint_runner

    torch.set_num_threads(2)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width + 2 * frames), indexing="ij")
    canvas = torch.stack([(torch.sin(xs / 5.0) + 1) / 2, (torch.cos(ys / 7.0) + 1) / 2,
                          ((xs * 3 + ys) % 23) / 23.0], -1).float()  # [H, W', 3]
    images = torch.empty((frames, height, width, 3))
    masks = torch.zeros((frames, height, width), dtype=torch.bool)
    for i in range(frames):
        images[i] = canvas[:, 2 * i:2 * i + width]
        cx = int(width * 0.2 + width * 0.6 * (i % 50) / 49)
        masks[i, height // 3:height // 3 + height // 4, cx - width // 16:cx + width // 16] = True
    models = None
    if backend == "propainter":
        from vanish.propainter_core import ProPainterModels
        from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
        from vanish.propainter_core.generator import GeneratorConfig, build_generator
        from vanish.propainter_core.raft import RaftConfig, build_raft

        torch.manual_seed(0)
        models = ProPainterModels(build_raft(RaftConfig()).eval(), build_flow_completion(FlowCompletionConfig()).eval(),
                                  build_generator(GeneratorConfig()).eval(), torch.device("cpu"))
    settings = inpaint_runner.RunSettings(backend=backend, raft_iter=2, segment_length=segment)
    baseline = _rss()
    peak = [baseline]
    running = [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with torch.no_grad():
        result = inpaint_runner.run_inpaint(images, masks, settings, models)
    seconds = time.perf_counter() - started
    running[0] = False
    sampler.join()
    # Output float32 + uint8 input + uint8 result, + the backend's holes and the returned mask (bool).
    holes = frames * result.processing_size[0] * result.processing_size[1]
    clip_bytes = result.filled.numel() * 4 + images.numel() * 2 + holes + result.mask_used.numel()
    planned = None  # flow_fill: what the runner planned for (the output IMAGE, float32, aside)
    if backend == "flow_fill":
        ff = replace(inpaint_runner.flow_fill_settings(settings), segment_length=result.segment_length)
        planned = inpaint_runner.flow_fill_bytes((height, width), frames, ff) + images.numel()  # + its uint8 copy
    return {"peak_delta": peak[0] - baseline, "clip_bytes": clip_bytes, "seconds": seconds,
            "segment": result.segment_length, "planned": planned, "output": result.filled.numel() * 4}


def measure(backend: str, frames: int, size: tuple[int, int], segment: int) -> dict:
    return run_in_fresh_process(child, backend, frames, size[0], size[1], segment)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["flow_fill", "propainter"])
    parser.add_argument("--size", default="192x128")
    parser.add_argument("--frames", nargs=2, type=int, default=[100, 400])
    parser.add_argument("--segment", type=int, default=40, help="streamed segment length (0 = from memory)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    print(header("bench_inpaint_memory", threads=2))  # the runs set 2 threads
    print(f"case: {size[0]}x{size[1]}, segments of {args.segment} frames, each run in a fresh process")
    ok = True
    for backend in args.backends:
        short, long = (measure(backend, n, size, args.segment) for n in args.frames)
        work = [r["peak_delta"] - r["clip_bytes"] for r in (short, long)]
        ratio_work = work[1] / max(work[0], 1)
        ratio_total = long["peak_delta"] / max(short["peak_delta"], 1)
        for n, r, w in zip(args.frames, (short, long), work):
            print(f"  {backend:10s} {n:4d} frames: peak +{r['peak_delta'] / 2**20:7.1f} MiB, of which clip-sized "
                  f"buffers {r['clip_bytes'] / 2**20:6.1f} MiB, working {w / 2**20:7.1f} MiB ({r['seconds']:.1f} s)")
            if r["planned"]:  # the memory plan must not fall short of what the run takes
                taken = r["peak_delta"] - r["output"]
                print(f"  {backend:10s} {n:4d} frames: planned for {r['planned'] / 2**20:7.1f} MiB, took "
                      f"{taken / 2**20:7.1f} MiB besides the output IMAGE (took / planned {taken / r['planned']:.2f})")
        passed = ratio_work <= 1.25
        ok &= passed
        print(f"  {backend:10s} working-memory ratio {args.frames[1]}/{args.frames[0]} frames: {ratio_work:.3f} "
              f"(bar 1.25) -> {'PASS' if passed else 'FAIL'}; total incl. clip-sized buffers {ratio_total:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
