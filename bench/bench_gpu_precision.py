"""ProPainter speed and peak GPU memory by size, clip length and precision (needs a CUDA GPU).

Grid: 432x240, 854x480, 1280x720 x 80 and 300 frames x fp32 / fp16 / bf16 (RAFT always fp32).
Each cell runs ``propainter_core.inpaint`` with the official defaults, streamed in segments of
``subvideo_length`` (80) frames, and reports wall time, frames per second and
``torch.cuda.max_memory_allocated``. ``--whole-clip`` runs every clip as one segment instead,
which is how the official script holds memory. Official README table for comparison
("Memory-efficient inference", fp32 / fp16): 1280x720 x 80 frames: OOM / 25 GB; 720x480:
13 / 8 GB; 640x480: 12 / 7 GB; 320x240: 4 / 3 GB.

Weights: ``--weights DIR`` with the three official files; without it the networks get random
weights (speed and memory do not depend on the values).

Usage: python bench/bench_gpu_precision.py [--weights models/propainter] [--sizes 432x240 ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import propainter_core  # noqa: E402
from _common import header  # noqa: E402
from propainter_core import ProPainterModels  # noqa: E402
from propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion  # noqa: E402
from propainter_core.generator import GeneratorConfig, build_generator  # noqa: E402
from propainter_core.raft import RaftConfig, build_raft  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def networks(weights: Path | None, dtype: torch.dtype) -> ProPainterModels:
    if weights is not None:
        models = propainter_core.load_models(raft=weights / "raft-things.pth",
                                             flow_completion=weights / "recurrent_flow_completion.pth",
                                             generator=weights / "ProPainter.pth", device="cpu")
        raft, completion, generator = models.raft, models.flow_completion, models.generator
    else:
        torch.manual_seed(0)
        raft, completion, generator = (build_raft(RaftConfig()), build_flow_completion(FlowCompletionConfig()),
                                       build_generator(GeneratorConfig()))
    device = torch.device("cuda")
    return ProPainterModels(raft=raft.to(device).eval(), flow_completion=completion.to(device, dtype).eval(),
                            generator=generator.to(device, dtype).eval(), device=device, dtype=dtype)


def clip(frames: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 255, size=(height, width + 2 * frames, 3), dtype=np.uint8)
    video = np.stack([canvas[:, 2 * i:2 * i + width] for i in range(frames)])
    masks = np.zeros((frames, height, width), np.uint8)
    for i in range(frames):
        x = int(width * 0.2 + width * 0.5 * (i % 60) / 59)
        masks[i, height // 3:height // 3 + height // 4, x:x + width // 8] = 1
    return video, masks


def cell(models: ProPainterModels, frames: int, width: int, height: int, whole: bool) -> str:
    video, masks = clip(frames, width, height)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    started = time.perf_counter()
    try:
        propainter_core.inpaint(video, masks, models, segment_length=frames if whole else None)
    except torch.OutOfMemoryError:
        return "OOM"
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 1024**3
    return f"{seconds:7.1f} s {frames / seconds:5.2f} fps {peak:6.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--sizes", nargs="+", default=["432x240", "854x480", "1280x720"])
    parser.add_argument("--frames", nargs="+", type=int, default=[80, 300])
    parser.add_argument("--precisions", nargs="+", default=list(DTYPES))
    parser.add_argument("--whole-clip", action="store_true", help="one segment per clip (official memory)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no new cell after this many seconds (the rest print 'skipped')")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu_precision: no CUDA GPU here; nothing measured.")
        return 0
    print(header("bench_gpu_precision", device="cuda"))
    print(f"case: weights {'official' if args.weights else 'random'}, "
          f"{'whole clip' if args.whole_clip else 'streamed (segments of 80)'}")
    started = time.perf_counter()
    for name in args.precisions:
        models = networks(args.weights, DTYPES[name])
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            for frames in args.frames:
                over = args.budget_s is not None and time.perf_counter() - started > args.budget_s
                result = "skipped (time budget)" if over else cell(models, frames, width, height,
                                                                    args.whole_clip)
                print(f"  {name} {width:4d}x{height:<4d} {frames:3d} frames: {result}", flush=True)
        del models
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
