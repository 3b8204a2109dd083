"""Speed of our bidirectional RAFT flow on the demo clip, against the official figure.

The official ProPainter pipeline spent 63.1 s on RAFT for 20 bmx-trees frames at 432x240
(20 iterations, both directions, clips of 12 frames, 2 threads on the team's 2-core CPU):
3.15 s per frame (shared/propainter_parity/README.md, "Reference performance"). This script
runs ``bidirectional_flow`` the same way (same frames, size, iterations and clip split) and
prints seconds per frame and the ratio. With ``--baseline`` it also times the official calling
pattern on this machine (each direction separately, features recomputed per direction, the
upsampling mask every iteration is the only part it does not repeat), which gives a ratio
that does not depend on how loaded the machine is.

The weights are the parity weights when the shared data is present (timing does not depend
on them). Usage: python bench/bench_raft.py [--frames 20] [--iters 20] [--threads 2] [--baseline]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from _common import header  # noqa: E402
from propainter_core.checkpoints import load_weights  # noqa: E402
from propainter_core.raft import RAFT, bidirectional_flow, build_raft  # noqa: E402
from shared_paths import CLIPS_DIR, PARITY_DIR  # noqa: E402

OFFICIAL_SECONDS_PER_FRAME = 3.15  # parity README: 63.1 s / 20 frames, 2 threads, 2-core CPU
OFFICIAL_FRAMES = 20
CLIP_LENGTH = 12  # parity: inference_propainter.py:302-309, width <= 640


def load_frames(count: int) -> torch.Tensor:
    """bmx-trees frames ``[1, T, 3, 240, 432]`` float in [-1, 1] (the pipeline's layout)."""
    files = sorted((CLIPS_DIR / "bmx-trees" / "frames").iterdir())[:count]
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])  # [T, H, W, 3]
    frames = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255 * 2 - 1  # [T, 3, H, W]
    return frames[None]


def clips(time_steps: int, length: int) -> list[tuple[int, int]]:
    """Frame ranges as the official script splits RAFT work: [0, 12), [11, 24), ..."""
    ranges = []
    for start in range(0, time_steps, length):
        end = min(time_steps, start + length)
        ranges.append((max(0, start - 1), end))
    return [(a, b) for a, b in ranges if b - a >= 2]


def run_ours(raft: RAFT, frames: torch.Tensor, iters: int) -> None:
    for a, b in clips(frames.shape[1], CLIP_LENGTH):
        bidirectional_flow(raft, frames[:, a:b], iters=iters)


@torch.no_grad()
def run_official_pattern(raft: RAFT, frames: torch.Tensor, iters: int) -> None:
    """Two pairwise calls per clip, like the official wrapper (features per direction)."""
    for a, b in clips(frames.shape[1], CLIP_LENGTH):
        clip = frames[0, a:b]
        raft(clip[:-1], clip[1:], iters=iters)
        raft(clip[1:], clip[:-1], iters=iters)


def timed(label: str, fn, frames_count: int) -> tuple[float, float]:
    """Run ``fn``; print wall and CPU seconds (CPU time is steadier on a shared machine)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(f"{label}: {seconds:.1f} s wall, {seconds / frames_count:.2f} s/frame, "
          f"{seconds / (frames_count - 1):.2f} s/pair (both directions); "
          f"CPU {cpu:.1f} s, {cpu / frames_count:.2f} CPU-s/frame")
    return seconds / frames_count, cpu / frames_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=OFFICIAL_FRAMES)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", action="store_true",
                        help="also time the official calling pattern on this machine")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    raft = build_raft()
    weights = PARITY_DIR.parent / "none"
    if PARITY_DIR.is_dir():
        from parity_weights import write_checkpoint

        weights = write_checkpoint("raft", Path(os.environ.get("TMPDIR", "/tmp")) / "vanish_bench")
        load_weights(raft, weights, network="raft")
    raft = raft.to(device)
    frames = load_frames(args.frames).to(device)

    print(header("bench_raft", device=device))
    print(f"device: {device}; weights: {weights.name if weights.exists() else 'random'}")
    print(f"input: bmx-trees, {frames.shape[1]} frames, {frames.shape[-1]}x{frames.shape[-2]}, "
          f"iters={args.iters}, clips of {CLIP_LENGTH} frames")
    bidirectional_flow(raft, frames[:, :2], iters=1)  # warm-up (allocator, kernels)
    ours, ours_cpu = timed("ours (bidirectional_flow)", lambda: run_ours(raft, frames, args.iters),
                           frames.shape[1])
    print(f"official figure: {OFFICIAL_SECONDS_PER_FRAME:.2f} s/frame (2-core CPU, 2 threads, "
          "load average 1.6-1.9)")
    print(f"ratio official/ours (wall): {OFFICIAL_SECONDS_PER_FRAME / ours:.2f}x")
    if args.baseline:
        base, base_cpu = timed("official calling pattern, this machine",
                               lambda: run_official_pattern(raft, frames, args.iters),
                               frames.shape[1])
        print(f"ratio official pattern/ours on this machine: {base / ours:.2f}x wall, "
              f"{base_cpu / ours_cpu:.2f}x CPU")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
