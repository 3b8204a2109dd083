"""RAFT work saved when overlapping segments reuse each other's flows.

A long clip is inpainted in segments (``segment_length`` owned frames plus ``segment_padding``
context frames on each side). Neighbouring segments share ``2 * padding`` frames; a flow depends
only on its two frames, so the next segment takes the shared pairs' RAFT flows from the previous
one instead of estimating them again. This script runs the same clip both ways with ProPainter's
real network configurations and random weights (RAFT's cost does not depend on the weights'
values) and prints the frame pairs RAFT ran, the time spent in RAFT and in the whole run, and
the largest output difference (uint8 levels).

Usage: python bench/bench_segment_flows.py [--frames 100] [--size 192x128] [--segment 40]
       [--padding 10] [--raft-iter 20]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import header  # noqa: E402
from _common import import_pack  # noqa: E402

import_pack()
from vanish.propainter_core import ProPainterModels  # noqa: E402
from vanish.propainter_core.config import InpaintSettings  # noqa: E402
from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion  # noqa: E402
from vanish.propainter_core.generator import GeneratorConfig, build_generator  # noqa: E402
from vanish.propainter_core.pipeline import run as run_module  # noqa: E402
from vanish.propainter_core.pipeline import stages  # noqa: E402
from vanish.propainter_core.raft import RaftConfig, build_raft  # noqa: E402


def synthetic_clip(frames: int, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A panning textured canvas (uint8 ``[T, H, W, 3]``) and a moving box mask (``[T, H, W]``)."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width + 2 * frames), indexing="ij")
    canvas = torch.stack([(torch.sin(xs / 5.0) + 1) / 2, (torch.cos(ys / 7.0) + 1) / 2,
                          ((xs * 3 + ys) % 23) / 23.0], -1)
    images = torch.stack([canvas[:, 2 * i:2 * i + width] for i in range(frames)])
    masks = torch.zeros((frames, height, width), dtype=torch.bool)
    for i in range(frames):
        cx = int(width * 0.2 + width * 0.6 * (i % 50) / 49)
        masks[i, height // 3:height // 3 + height // 4, cx - width // 16:cx + width // 16] = True
    return (images * 255).round().to(torch.uint8), masks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="192x128")
    parser.add_argument("--segment", type=int, default=40)
    parser.add_argument("--padding", type=int, default=10)
    parser.add_argument("--raft-iter", type=int, default=20)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(2)
    print(header("bench_segment_flows", threads=2))
    torch.manual_seed(0)
    models = ProPainterModels(build_raft(RaftConfig()).eval(), build_flow_completion(FlowCompletionConfig()).eval(),
                              build_generator(GeneratorConfig()).eval(), torch.device("cpu"))
    frames, masks = synthetic_clip(args.frames, width, height)
    settings = InpaintSettings(raft_iter=args.raft_iter)
    real_flow, real_shared = stages.bidirectional_flow, run_module._shared_pairs
    figures = {}
    for label, shared in (("recomputed", lambda before, after: 0), ("reused", real_shared)):
        counted = {"pairs": 0, "seconds": 0.0}

        def timed_flow(raft, clip, *, iters):
            started = time.perf_counter()
            out = real_flow(raft, clip, iters=iters)
            counted["seconds"] += time.perf_counter() - started
            counted["pairs"] += clip.shape[1] - 1
            return out

        stages.bidirectional_flow, run_module._shared_pairs = timed_flow, shared
        started = time.perf_counter()
        result = run_module.run_inpaint(frames, masks, models, settings, segment_length=args.segment,
                                        segment_padding=args.padding)
        figures[label] = (counted["pairs"], counted["seconds"], time.perf_counter() - started, result)
        stages.bidirectional_flow, run_module._shared_pairs = real_flow, real_shared
    print(f"case: {args.frames} frames {width}x{height}, segments of {args.segment} + {args.padding} context "
          f"frames each side, raft_iter {args.raft_iter}")
    for label, (pairs, raft_s, total_s, _) in figures.items():
        print(f"  {label:10s}: RAFT ran {pairs:4d} frame pairs in {raft_s:6.1f} s; whole run {total_s:6.1f} s")
    (p0, r0, t0, out0), (p1, r1, t1, out1) = figures["recomputed"], figures["reused"]
    diff = (out0.int() - out1.int()).abs()
    print(f"  reuse: {p1 / p0:.3f}x the RAFT pairs, RAFT time {r1 / r0:.3f}x, whole run {t1 / t0:.3f}x; "
          f"outputs differ by at most {int(diff.max())} levels ({(diff > 0).float().mean().item() * 100:.4f} % of values)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
