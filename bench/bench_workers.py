"""A/B in one process: the core's stages sequential at N threads against ``workers`` (single-threaded
worker threads), interleaved so that both see the same machine load.

Runs ``propainter_core.inpaint`` on the first ``--frames`` bmx-trees frames at 432x240 with the
parity weights, alternating ``workers=1`` (every op on ``--threads`` OpenMP threads) and
``workers=2``, ``--reps`` times each, and prints CPU seconds (user + system of the process) and
wall seconds per stage, and whether the outputs are identical. The outputs of ``workers=2`` equal
a sequential run at one thread, not at N (another thread count may sum in another order).

Usage: python bench/bench_workers.py [--frames 12] [--raft-iter 20] [--threads 2] [--reps 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import propainter_core  # noqa: E402
from _common import header  # noqa: E402
from bench_core import STAGES, cpu_seconds, read_clip, timed_stages  # noqa: E402
from parity_weights import MANIFESTS, write_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--raft-iter", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames, masks = read_clip(args.frames)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: write_checkpoint(name, Path(folder)) for name in MANIFESTS}
        models = propainter_core.load_models(**paths, device=torch.device("cpu"))
    print(header("bench_workers", device=torch.device("cpu")))
    print(f"clip: bmx-trees, {args.frames} frames 432x240, raft_iter {args.raft_iter}, "
          f"{args.threads} threads, interleaved x{args.reps}")
    labels = list(STAGES.values())
    print(f"{'run':<22} " + " ".join(f"{label[:12]:>15}" for label in labels) + f" {'total':>15}  load")
    outputs: dict[int, np.ndarray] = {}
    for rep in range(args.reps):
        for workers in (1, 2):
            wall: dict[str, float] = defaultdict(float)
            cpu: dict[str, float] = defaultdict(float)
            timed_stages(wall, cpu, torch.device("cpu"))
            start, start_cpu = time.perf_counter(), cpu_seconds()
            result = propainter_core.inpaint(frames, masks, models, raft_iter=args.raft_iter, workers=workers)
            total_wall, total_cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
            _unwrap()
            same = "" if workers not in outputs else (
                " same" if np.array_equal(outputs[workers], result) else " DIFFERENT")
            outputs[workers] = result
            cells = " ".join(f"{cpu[label]:>6.1f} / {wall[label]:>6.1f}" for label in labels)
            print(f"workers={workers} rep {rep}{'':<9} {cells} {total_cpu:>6.1f} / {total_wall:>6.1f} "
                  f" {os.getloadavg()[0]:.1f}{same}")
    print("cells: CPU s / wall s")
    differing = np.mean(outputs[1] != outputs[2])
    print(f"workers=1 (at {args.threads} threads) vs workers=2: {differing:.2e} of the uint8 values differ, "
          f"max {np.abs(outputs[1].astype(int) - outputs[2].astype(int)).max()} levels")


def _unwrap() -> None:
    """Undo :func:`bench_core.timed_stages` (it wraps the stage functions once per call)."""
    from propainter_core.pipeline import run as pipeline_run

    for attribute in STAGES:
        function = getattr(pipeline_run, attribute)
        original = (function.__kwdefaults__ or {}).get("_original")
        if original is not None:
            setattr(pipeline_run, attribute, original)


if __name__ == "__main__":
    main()
