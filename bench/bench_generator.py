"""Speed of our InpaintGenerator against the official one on this CPU (random weights).

The official figure (shared/propainter_parity/README.md, "Reference performance"): the
unchanged script on 20 frames at 432x240, 2 threads, spent 64.1 s in the generator, i.e.
3.20 s per output frame. Its 4 windows (neighbour length 10, stride 5, reference stride 10)
encoded 7 + 11 + 12 + 11 = 41 frames.

Default: one pipeline-style window, 11 local frames (f-5..f+5) + 1 reference frame, timed
after a warm-up call; the per-frame figure is scaled to the official 20-frame schedule
(41 encoded frames per 20 output frames). ``--clip`` runs that whole 4-window schedule instead
and measures it directly (about 4x longer).

Usage: python bench/bench_generator.py [--clip] [--threads 2] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import header  # noqa: E402
from propainter_core.generator import GeneratorConfig, build_generator  # noqa: E402

HEIGHT, WIDTH = 240, 432
OFFICIAL_SECONDS_PER_FRAME = 3.20
OFFICIAL_CLIP_FRAMES = 20
OFFICIAL_ENCODED_FRAMES = 41
# (local frames, reference frames) of the official 20-frame run's four windows.
CLIP_WINDOWS = ((list(range(0, 6)), [10]), (list(range(0, 11)), []), (list(range(5, 16)), [0]),
                (list(range(10, 20)), [0]))
ONE_WINDOW = (list(range(5, 16)), [0])


def _clip(frames: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random frames, a moving box hole and smooth random flows, shaped like the pipeline's."""
    masks = torch.zeros(1, frames, 1, HEIGHT, WIDTH)
    for t in range(frames):
        x0 = 100 + 6 * t
        masks[:, t, :, 80:170, x0:x0 + 90] = 1.0
    updated = masks.clone()
    updated[..., :, ::2] = 0  # image propagation filled part of the hole
    flows = torch.nn.functional.interpolate(torch.randn(2 * (frames - 1), 2, 8, 14, generator=generator) * 3,
                                            size=(HEIGHT, WIDTH), mode="bilinear", align_corners=False)
    flows = flows.view(1, 2 * (frames - 1), 2, HEIGHT, WIDTH)
    frames_t = torch.rand(1, frames, 3, HEIGHT, WIDTH, generator=generator) * 2 - 1
    return {"frames": frames_t * (1 - masks), "masks": masks, "updated": updated,
            "flows_f": flows[:, : frames - 1], "flows_b": flows[:, frames - 1:]}


def _run_window(model, clip, local: list[int], refs: list[int]) -> tuple[float, float]:
    """Wall seconds and process CPU seconds of one generator call."""
    ids = local + refs
    start, start_cpu = time.perf_counter(), time.process_time()
    model(clip["frames"][:, ids], (clip["flows_f"][:, local[:-1]], clip["flows_b"][:, local[:-1]]),
          clip["masks"][:, ids], clip["updated"][:, ids], len(local))
    return time.perf_counter() - start, time.process_time() - start_cpu


def _total(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(r[0] for r in runs), sum(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", action="store_true", help="time the official 4-window, 20-frame schedule")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (official: 2)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repetitions (the best is reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_generator(GeneratorConfig())
    clip = _clip(OFFICIAL_CLIP_FRAMES, torch.Generator().manual_seed(0))
    print(header("bench_generator"))
    with torch.inference_mode():
        _run_window(model, clip, list(range(0, 3)), [10])  # warm-up (allocator, oneDNN primitives)
        if args.clip:
            wall, cpu = min((_total([_run_window(model, clip, *w) for w in CLIP_WINDOWS])
                             for _ in range(args.repeat)), key=lambda r: r[0])
            scale = 1.0 / OFFICIAL_CLIP_FRAMES
            print(f"20-frame schedule at {WIDTH}x{HEIGHT}: {wall:.1f} s wall, {cpu:.1f} s CPU in 4 windows")
        else:
            wall, cpu = min((_run_window(model, clip, *ONE_WINDOW) for _ in range(args.repeat)), key=lambda r: r[0])
            encoded = len(ONE_WINDOW[0]) + len(ONE_WINDOW[1])
            scale = OFFICIAL_ENCODED_FRAMES / encoded / OFFICIAL_CLIP_FRAMES
            print(f"one window at {WIDTH}x{HEIGHT} ({len(ONE_WINDOW[0])} local + {len(ONE_WINDOW[1])} reference): "
                  f"{wall:.2f} s wall, {cpu:.2f} s CPU; scaled to the official schedule "
                  f"({OFFICIAL_ENCODED_FRAMES} encoded frames per {OFFICIAL_CLIP_FRAMES} output frames)")
    per_frame = wall * scale
    print(f"seconds per output frame (wall): ours {per_frame:.2f}, official {OFFICIAL_SECONDS_PER_FRAME:.2f}, "
          f"ratio official/ours {OFFICIAL_SECONDS_PER_FRAME / per_frame:.2f}x")
    # On a shared machine the wall time mostly measures the other load; CPU time / threads is
    # what the wall time would be with the cores to ourselves (an estimate, optimistic by the
    # parallel inefficiency).
    cpu_per_frame = cpu * scale / args.threads
    print(f"seconds per output frame (CPU time / {args.threads} threads): ours {cpu_per_frame:.2f}, "
          f"ratio official/ours {OFFICIAL_SECONDS_PER_FRAME / cpu_per_frame:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f} (figures are only comparable on an idle machine)")


if __name__ == "__main__":
    main()
