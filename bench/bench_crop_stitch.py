"""Crop-and-stitch speed: a small object in a 1920x1080 clip, crop vs whole frame, same pixel scale.

The issue's bar: processing only the region around the mask (its extent over the clip plus a
context margin) is at least 3x faster than processing the whole frame at the same scale. The
object (a disc) covers about 5 % of the frame and drifts across part of it. Both runs use the
weights-free backend on the CPU (ProPainter with real or random weights at 1080p is beyond a CPU
bench; its cost grows faster than linearly with the area, so its gain is larger). After each run
the result is composited into the original and checked bit for bit outside the mask.

Usage: python bench/bench_crop_stitch.py [--frames 16] [--size 1920x1080]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import header  # noqa: E402
from _common import import_pack  # noqa: E402


def make_clip(frames: int, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IMAGE ``[T, H, W, 3]`` of a panning texture with a grey disc over ~5 % of the frame, MASK."""
    gen = torch.Generator().manual_seed(0)
    pan = 3
    noise = torch.rand((1, 3, height // 8, (width + pan * frames) // 8), generator=gen)
    canvas = torch.nn.functional.interpolate(noise, size=(height, width + pan * frames), mode="bicubic",
                                             align_corners=False)[0].permute(1, 2, 0).clamp(0, 1)  # [H, W', 3]
    radius = int(np.sqrt(0.05 * width * height / np.pi))
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    images = torch.empty((frames, height, width, 3))
    masks = torch.zeros((frames, height, width))
    for i in range(frames):
        images[i] = canvas[:, pan * i:pan * i + width]
        cx, cy = width * 0.45 + 6 * i, height * 0.5 + 3 * i
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius ** 2
        masks[i][disc] = 1.0
        images[i][disc] = 0.5
    return images, masks


def timed(node, images, masks, model, crop: str) -> tuple[float, tuple]:
    started = time.perf_counter()
    out = node.inpaint(images, masks, model, mask_dilation=4, flow_mask_dilation=-1, neighbor_length=10,
                       ref_stride=10, subvideo_length=80, raft_iter=20, size_mode="scale", scale=1.0,
                       long_side=960, crop=crop, crop_margin=64, segment_length=0)
    return time.perf_counter() - started, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    import_pack()
    from vanish.nodes.compositing import VanishCompositeFrames
    from vanish.nodes.inpainting import InpaintModel, VanishProPainterInpaint

    print(header("bench_crop_stitch"))
    print(f"case: {args.frames} frames {width}x{height}, flow_fill backend, scale 1.0")
    images, masks = make_clip(args.frames, width, height)
    print(f"  object: {float(masks.mean()) * 100:.1f} % of the frame per frame on average")
    node, model = VanishProPainterInpaint(), InpaintModel("flow_fill", torch.device("cpu"))
    results = {}
    for crop in ("off", "auto"):
        seconds, (filled, used, region) = timed(node, images, masks, model, crop)
        (final,) = VanishCompositeFrames().composite(images, filled, used, False, 16, region)
        exact = bool(torch.equal(final[used == 0], images[used == 0]))
        share = region["width"] * region["height"] / (width * height) * 100
        results[crop] = seconds
        print(f"  crop {crop:4s}: {seconds:7.1f} s, region {region} ({share:.0f} % of the frame), "
              f"outside the mask bit-identical: {exact}")
    speedup = results["off"] / results["auto"]
    print(f"  speed-up of crop-and-stitch: {speedup:.2f}x (bar 3x) -> {'PASS' if speedup >= 3 else 'FAIL'}")
    return 0 if speedup >= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
