"""Benchmark: the whole ``propainter_core.inpaint`` on 20 bmx-trees frames at 432x240.

Prints the hardware, the commit, seconds per frame of each stage (RAFT, flow completion, image
propagation, generator), the total, the peak RSS, and the ratios to the official script's
figures measured on the same kind of machine (shared/propainter_parity/README.md, "Reference
performance": 155 s wall, 3.45 GB peak RSS; 3.15 / 0.45 / 0.013 / 3.20 s per frame).

The weights are the pseudo-random parity weights (tests/parity_weights.py): the arithmetic is
the real networks', only the numbers differ. Usage::

    .venv/bin/python bench/bench_core.py [--frames 20] [--device cpu] [--threads 2] [--fp16] [--cpu-bf16] [--workers auto|N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cv2  # noqa: E402  (bench only: reads the JPEG/PNG clip the way the official script does)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import propainter_core  # noqa: E402
from _common import header  # noqa: E402
from propainter_core.pipeline import run as pipeline_run  # noqa: E402
from parity_weights import MANIFESTS, write_checkpoint  # noqa: E402
from shared_paths import CLIPS_DIR, PARITY_DIR  # noqa: E402

#: The official script on this machine class (README "Reference performance", 2 threads).
OFFICIAL_WALL_S = 155.0
OFFICIAL_PEAK_RSS_GB = 3.45
#: CPU seconds of the official run (221 s user + 57 s system): comparable on a shared machine.
OFFICIAL_CPU_S = 278.0
#: The same script timed side by side with ours, interleaved, on this machine (issue 14):
#: 398-406 CPU s and 3.35-3.50 GB. CPU time grows with the machine's load (threads spin and
#: caches are shared), so the ratio to this run, made under load like ours, is printed too.
SIDE_BY_SIDE_CPU_S = 402.0
SIDE_BY_SIDE_PEAK_RSS_GB = 3.43
OFFICIAL_STAGE_S_PER_FRAME = {"RAFT": 3.15, "flow completion": 0.45, "image propagation": 0.013,
                              "generator": 3.20}
STAGES = {"estimate_flows": "RAFT", "complete_flows": "flow completion",
          "propagate_images": "image propagation", "generate_and_composite": "generator"}


def read_clip(frames: int) -> tuple[np.ndarray, np.ndarray]:
    clip = CLIPS_DIR / "bmx-trees"
    rgb = [cv2.cvtColor(cv2.imread(str(clip / "frames" / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB)
           for i in range(frames)]
    masks = [cv2.imread(str(clip / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(frames)]
    return np.stack(rgb), np.stack(masks)


def official_figures() -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in GB of the official run, from the parity data's
    ``measurements.json`` (``/usr/bin/time -v`` lines); the constants above if it is missing."""
    try:
        lines = json.loads((PARITY_DIR / "measurements.json").read_text())["bench"]["time_v"]
    except (OSError, KeyError, ValueError):
        return OFFICIAL_CPU_S, OFFICIAL_PEAK_RSS_GB
    values = {line.split(":")[0].strip(): line.rsplit(":", 1)[1].strip() for line in lines}
    return (float(values["User time (seconds)"]) + float(values["System time (seconds)"]),
            float(values["Maximum resident set size (kbytes)"]) / 1e6)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_stages(seconds: dict[str, float], cpu: dict[str, float], device: torch.device) -> None:
    """Wrap the pipeline's stage functions with timers (the core itself has no timing code)."""
    for attribute, label in STAGES.items():
        original = getattr(pipeline_run, attribute)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            start, start_cpu = time.perf_counter(), cpu_seconds()
            result = _original(*args, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[_label] += time.perf_counter() - start
            cpu[_label] += cpu_seconds() - start_cpu
            return result

        setattr(pipeline_run, attribute, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="the opt-in bfloat16 CPU mode (not the official arithmetic)")
    parser.add_argument("--workers", default="auto",
                        help="'auto' (default) or an int: worker threads of one OpenMP thread each (1 = sequential)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    wall = time.perf_counter()
    frames, masks = read_clip(args.frames)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: write_checkpoint(name, Path(folder)) for name in MANIFESTS}
        models = propainter_core.load_models(**paths, device=device)
    seconds: dict[str, float] = defaultdict(float)
    stage_cpu: dict[str, float] = defaultdict(float)
    timed_stages(seconds, stage_cpu, device)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    workers = args.workers if args.workers == "auto" else int(args.workers)
    result = propainter_core.inpaint(frames, masks, models, fp16=args.fp16, cpu_bf16=args.cpu_bf16,
                                     workers=workers)
    run_s = time.perf_counter() - start
    wall = time.perf_counter() - wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_gb = usage.ru_maxrss / 1e6  # kB on Linux
    cpu_s = usage.ru_utime + usage.ru_stime
    official_cpu, official_rss = official_figures()
    count = len(frames)
    print(header("bench_core", device=device))
    print(f"clip:     bmx-trees, {count} frames {frames.shape[2]}x{frames.shape[1]} -> "
          f"{result.shape[2]}x{result.shape[1]}, device {device}, fp16={args.fp16}, "
          f"cpu_bf16={args.cpu_bf16}, threads={args.threads}, workers={args.workers}")
    print(f"{'stage':<18} {'s/frame':>8} {'official':>9} {'ratio':>6} {'CPU s':>7} {'share':>6}")
    for label, official in OFFICIAL_STAGE_S_PER_FRAME.items():
        ours = seconds[label] / count
        print(f"{label:<18} {ours:>8.3f} {official:>9.3f} {ours / official:>6.2f} "
              f"{stage_cpu[label]:>7.1f} {stage_cpu[label] / cpu_s:>6.1%}")
    print(f"inpaint total      {run_s:>8.1f} s  ({run_s / count:.2f} s/frame)")
    print(f"wall (load+run)    {wall:>8.1f} s  official {OFFICIAL_WALL_S:.0f} s  "
          f"ratio {wall / OFFICIAL_WALL_S:.2f}")
    print(f"CPU time (load+run) {cpu_s:>7.1f} s  ({usage.ru_utime:.1f} user + {usage.ru_stime:.1f} system, "
          f"{usage.ru_minflt / 1e6:.1f} M minor page faults)")
    print(f"load average       {load_before:>8.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          f"(other work on this machine slows wall time and inflates CPU time)")
    print(f"peak RSS           {peak_gb:>8.2f} GB")
    print(f"CPU ratio          {cpu_s / official_cpu:>8.2f}   official {official_cpu:.0f} s "
          f"(measurements.json); {cpu_s / SIDE_BY_SIDE_CPU_S:.2f} vs the side-by-side run "
          f"({SIDE_BY_SIDE_CPU_S:.0f} s, issue 14)")
    print(f"peak RSS ratio     {peak_gb / official_rss:>8.2f}   official {official_rss:.2f} GB "
          f"(measurements.json); {peak_gb / SIDE_BY_SIDE_PEAK_RSS_GB:.2f} vs the side-by-side run "
          f"({SIDE_BY_SIDE_PEAK_RSS_GB:.2f} GB)")
    if device.type == "cuda":
        print(f"peak GPU memory    {torch.cuda.max_memory_allocated(device) / 1e9:>8.2f} GB")


if __name__ == "__main__":
    main()
