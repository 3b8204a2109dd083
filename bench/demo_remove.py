"""Headless demo: remove a moving object from a clip this script generates, through the nodes.

Runs the whole graph of the object-removal workflow without ComfyUI (the pack's standalone
bridge), on a synthetic clip whose background is known, so the result can be scored:

    load (Load Video Frames) -> mask (Mask Dilate & Blur) -> inpaint (ProPainter Inpaint, the
    weights-free flow_fill backend) -> composite (Composite Frames) -> metric (Warp Error and
    PSNR against the true background) -> save (Save Video, H.264 MP4)

No model files and no download are needed. Usage::

    python bench/demo_remove.py                 # writes into a new temporary folder
    python bench/demo_remove.py --out demo_out  # or into demo_out/ (input/ and output/ inside)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # also when started from elsewhere
from _common import import_pack  # noqa: E402


def make_clip(folder: Path, frames: int, width: int, height: int) -> np.ndarray:
    """Write frames/ and masks/ PNGs of a panning textured scene with a moving red ball.

    Returns:
        The true background frames, uint8 ``[T, H, W, 3]`` RGB (what removal should give).
    """
    rng = np.random.default_rng(7)
    pan = 2.6  # pixels per frame: sub-pixel, so the flow is not a trivial integer shift
    canvas_w = width + int(pan * frames) + 2
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (height, canvas_w, 3)).astype(np.float32), (0, 0), 3)
    ys, xs = np.mgrid[:height, :canvas_w].astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(xs / 9.0)[..., None] * np.array([0.6, 0.3, 0.1], np.float32)
    sky = np.clip(ys / height, 0, 1)[..., None] * np.array([0.1, 0.3, 0.5], np.float32)
    canvas = np.clip((noise - noise.mean()) * 4 + stripes * 0.6 + sky + 0.15, 0, 1)
    shifts = [np.float32([[1, 0, -pan * i], [0, 1, 0]]) for i in range(frames)]
    truth = np.stack([cv2.warpAffine(canvas, m, (width, height), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT) for m in shifts])
    truth = (np.clip(truth, 0, 1) * 255).round().astype(np.uint8)
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    radius = height // 7
    for i in range(frames):
        cx = int(width * 0.15 + width * 0.7 * i / max(frames - 1, 1))
        cy = int(height * 0.55 + height * 0.2 * np.sin(i / 5.0))
        frame, mask = truth[i].copy(), np.zeros((height, width), np.uint8)
        cv2.circle(frame, (cx, cy), radius, (210, 30, 40), -1, lineType=cv2.LINE_AA)
        cv2.circle(mask, (cx, cy), radius, 255, -1, lineType=cv2.LINE_AA)
        cv2.imwrite(str(folder / "frames" / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / "masks" / f"{i:05d}.png"), mask)
    return truth


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    mse = float(((a - b)[where] * 255.0).pow(2).mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="base folder (default: a new temp folder)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="320x180", help="WIDTHxHEIGHT of the generated clip")
    args = parser.parse_args()
    size = args.size.lower().split("x")
    if len(size) != 2 or not all(v.strip().isdigit() and int(v) >= 32 for v in size):
        parser.error(f"--size {args.size!r} is not WIDTHxHEIGHT (both at least 32), e.g. --size 320x180")
    if args.out is not None and not args.out.resolve().parent.is_dir():
        parser.error(f"--out {args.out}: its folder {args.out.resolve().parent} does not exist; create it "
                     "first (the demo never creates folders above the one you name)")
    base = (args.out or Path(tempfile.mkdtemp(prefix="vanish_demo_"))).resolve()
    os.environ["VANISH_BASE_DIR"] = str(base)
    width, height = (int(v) for v in args.size.lower().split("x"))
    import_pack()
    from vanish.nodes.compositing import VanishCompositeFrames
    from vanish.nodes.inpainting import VanishProPainterInpaint, VanishProPainterModelLoader
    from vanish.nodes.masks import VanishMaskDilateBlur
    from vanish.nodes.metrics import VanishWarpErrorMetric
    from vanish.nodes.video_io import LoadVideoFrames, SaveVideo

    started = time.perf_counter()
    truth = make_clip(base / "input" / "demo", args.frames, width, height)
    frames, mask, *_ = LoadVideoFrames().load("", 0, 0, 1, 0.0, 0, 0, path="demo/frames",
                                              mask_path="demo/masks", mask_threshold=0.0)
    soft, hard, _ = VanishMaskDilateBlur().refine(mask, grow=3, shape="disk", fill_holes=False, min_island_area=0,
                                                  feather=1.0, temporal_sigma=0.0, invert=False)
    (model,) = VanishProPainterModelLoader().load("flow_fill (no weights)", "raft-things.pth",
                                                  "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "auto")
    filled, used, crop = VanishProPainterInpaint().inpaint(
        frames, hard, model, mask_dilation=4, flow_mask_dilation=-1, neighbor_length=10, ref_stride=10,
        subvideo_length=80, raft_iter=20, size_mode="scale", scale=1.0, long_side=960, crop="auto",
        crop_margin=32, segment_length=0)
    (result,) = VanishCompositeFrames().composite(frames, filled, soft, False, 16, crop)
    error, _, _ = VanishWarpErrorMetric().measure(result, "filled region", "dis", "result", True, mask=used)
    truth_t = torch.from_numpy(truth).float() / 255.0
    floor, _, _ = VanishWarpErrorMetric().measure(truth_t, "filled region", "dis", "result", True, mask=used)
    saved = SaveVideo().save("vanish/demo_removed", "h264-mp4", 19, 25.0, images=result)
    inside = used > 0
    print(f"Vanish demo: {args.frames} frames {width}x{height}, flow_fill backend, crop {crop}")
    print(f"  PSNR inside the removed object vs the true background: {psnr(result, truth_t, inside):.2f} dB "
          f"(the object itself: {psnr(frames, truth_t, inside):.2f} dB)")
    print(f"  warp error in the filled region: {error:.3g} (true background: {floor:.3g})")
    print(f"  outside the mask identical to the input: {bool(torch.equal(result[soft == 0], frames[soft == 0]))}")
    print(f"  saved {saved['result'][0]}  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
