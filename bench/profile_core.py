"""Profile ``propainter_core.inpaint`` per stage and per convolution shape (torch.profiler).

Runs the pipeline on the first ``--frames`` bmx-trees frames at 432x240 with the parity
weights, at ``--threads`` threads, and prints for each stage its CPU seconds, then the
convolutions that take the most self CPU time, grouped by stage and (input, weight) shape, and
the top operators overall. Profiling adds overhead; use the shares, not the absolute seconds.

Usage: python bench/profile_core.py [--frames 8] [--threads 1] [--top 25] [--cpu-bf16]
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

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

import propainter_core  # noqa: E402
from _common import header  # noqa: E402
from bench_core import STAGES, read_clip  # noqa: E402
from parity_weights import MANIFESTS, write_checkpoint  # noqa: E402
from propainter_core.pipeline import run as pipeline_run  # noqa: E402


def label_stages() -> None:
    for attribute, label in STAGES.items():
        original = getattr(pipeline_run, attribute)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            with record_function(f"stage::{_label}"):
                return _original(*args, **kwargs)

        setattr(pipeline_run, attribute, wrapper)


def stage_of(event) -> str:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("stage::"):
            return parent.name[len("stage::"):]
        parent = parent.cpu_parent
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cpu-bf16", action="store_true", help="the opt-in bfloat16 CPU mode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames, masks = read_clip(args.frames)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: write_checkpoint(name, Path(folder)) for name in MANIFESTS}
        models = propainter_core.load_models(**paths)
    label_stages()
    print(header("profile_core"))
    print(f"{args.frames} bmx-trees frames 432x240, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}")
    start = time.process_time()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        propainter_core.inpaint(frames, masks, models, cpu_bf16=args.cpu_bf16)
    print(f"CPU {time.process_time() - start:.1f} s (with profiler), load {os.getloadavg()[0]:.1f}")
    events = prof.events()
    stage_total: dict[str, float] = defaultdict(float)
    for event in events:
        if event.name.startswith("stage::"):
            stage_total[event.name[7:]] += event.cpu_time_total / 1e6
    convs: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0])
    ops: dict[tuple, float] = defaultdict(float)
    for event in events:
        if event.name.startswith("stage::"):
            continue
        stage = None
        if event.name == "aten::convolution":
            stage = stage_of(event)
            shapes = event.input_shapes
            key = (stage, tuple(shapes[0]), tuple(shapes[1]))
            convs[key][0] += event.cpu_time_total / 1e6
            convs[key][1] += 1
        if event.self_cpu_time_total:
            ops[(stage or stage_of(event), event.name)] += event.self_cpu_time_total / 1e6
    total = sum(stage_total.values())
    print("\nstage CPU (profiled):")
    for stage, seconds in sorted(stage_total.items(), key=lambda kv: -kv[1]):
        conv = sum(v[0] for k, v in convs.items() if k[0] == stage)
        print(f"  {stage:<18} {seconds:7.1f} s {seconds / total:6.1%}   convolutions {conv:6.1f} s")
    print(f"\ntop convolutions (total CPU incl. children), of {total:.1f} s:")
    for (stage, inp, weight), (seconds, calls) in sorted(convs.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"  {seconds:6.1f} s {seconds / total:6.1%} {calls:5d}x  {stage:<17} in {list(inp)} w {list(weight)}")
    print("\ntop operators by self CPU:")
    for (stage, name), seconds in sorted(ops.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {seconds:6.1f} s {seconds / total:6.1%}  {stage:<17} {name}")


if __name__ == "__main__":
    main()
