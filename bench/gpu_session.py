"""The whole GPU check of issue 14 as one run that fits about 10 minutes on one H100/H200.

1. ``bench_core --device cuda`` (20 bmx-trees frames at 432x240, fp32, then fp16): speed and
   peak GPU memory of the core against the official CPU figures.
2. Precision distance on the parity clip (16 bmx-trees frames at 224x128, parity weights):
   fp16 and bf16 outputs against fp32 (fraction of uint8 values that differ, that differ by more
   than one level, and the largest difference).
3. ``bench_gpu_precision`` over 432x240, 854x480, 1280x720 x 80 and 300 frames x fp32/fp16/bf16,
   streamed, with a time budget: cells that would start after it print "skipped".

Usage: ``python bench/gpu_session.py [--budget-s 420]``. Without CUDA it says so and exits.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

import bench_core  # noqa: E402
import bench_gpu_precision  # noqa: E402
import propainter_core  # noqa: E402
from parity_weights import MANIFESTS, write_checkpoint  # noqa: E402
from shared_paths import PARITY_DIR  # noqa: E402


def precision_distance() -> None:
    from safetensors.numpy import load_file

    case = load_file(str(PARITY_DIR / "e2e_bmx16.safetensors"))
    frames, masks = case["input_frames_rgb"], case["input_masks"]
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: write_checkpoint(name, Path(folder)) for name in MANIFESTS}
        outputs = {}
        for name, dtype in bench_gpu_precision.DTYPES.items():
            models = propainter_core.load_models(**paths, device="cuda", dtype=dtype)
            outputs[name] = propainter_core.inpaint(frames, masks, models).astype(np.int16)
            del models
    for name in ("fp16", "bf16"):
        diff = np.abs(outputs[name] - outputs["fp32"])
        print(f"  {name} vs fp32 on e2e_bmx16: {(diff > 0).mean():.2e} of values differ, "
              f"{(diff > 1).mean():.2e} by more than 1, max {diff.max()}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="time budget of the precision grid (step 3)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_session: no CUDA GPU here; nothing measured.")
        return 0
    started = time.perf_counter()
    for flags in ([], ["--fp16"]):
        sys.argv = ["bench_core.py", "--device", "cuda", *flags]
        bench_core.main()
    precision_distance()
    bench_gpu_precision.main(["--budget-s", str(args.budget_s)])
    print(f"gpu_session: {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
