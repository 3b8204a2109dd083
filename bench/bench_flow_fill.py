"""Quality of the weights-free backend against two baselines, on real clips with known truth.

A synthetic hole (a disc that moves across the frame) is cut over real footage, so the true
pixels behind it are known. The hole is painted with a flat "object" colour in the input the
methods see. Three fills are compared inside the dilated hole (the region every method fills):

* ``telea``: OpenCV Telea inpainting per frame (the flickering baseline),
* ``zero_motion``: the previous frame's TRUE pixels copied into the hole (a cheat that knows
  the truth but ignores motion; frame 0 copies frame 1),
* ``flow_fill``: ours (``nodes/ops/flow_fill.py``).

Metrics: PSNR over all hole pixels of the clip, and warp error: the mean absolute difference
(0..255) between frame t and frame t+1 warped back along the flow of the TRUE frames, over the
hole pixels of frame t. The true frames score a floor with the same flow; the bar compares
``method - floor``.

Bars (issue 6): PSNR >= Telea + 6 dB and >= zero-motion + 2 dB; warp error above the floor
<= 1/4 of Telea's.

Usage: python bench/bench_flow_fill.py [--frames 50] [--clips bmx-trees tennis running_car]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from shared_paths import CLIPS_DIR  # noqa: E402

from _common import header  # noqa: E402

sys.path.insert(0, str(ROOT.parent))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("flow_fill", ROOT / "nodes" / "ops" / "flow_fill.py")
flow_fill = importlib.util.module_from_spec(_spec)
sys.modules["flow_fill"] = flow_fill  # a ComfyUI-free module: load it without the pack
_spec.loader.exec_module(flow_fill)

MASK_DILATION = 4


# running_car opens on a close-up of the car itself (no annotation to keep the hole off it);
# the bench takes its landscape part, where the hole crosses background.
CLIP_START = {"running_car": int(os.environ.get("VANISH_BENCH_CAR_START", "200"))}


def load_clip(name: str, limit: int) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB; running_car is halved to 486x270 to keep the bench short."""
    folder = CLIPS_DIR / name
    if (folder / "frames").is_dir():
        files = sorted((folder / "frames").iterdir())[:limit]
        return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])
    import av

    frames = []
    with av.open(str(folder / f"{name}.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < CLIP_START.get(name, 0):
                continue
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA))
            if len(frames) == limit:
                break
    return np.stack(frames)


def object_masks(name: str, limit: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The clip's annotated foreground (bool ``[T, H, W]``), or None when it has none."""
    folder = CLIPS_DIR / name / "masks"
    if not folder.is_dir():
        return None
    files = sorted(folder.iterdir())[:limit]
    return np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), shape[::-1],
                                interpolation=cv2.INTER_NEAREST) > 0 for f in files])


def disc_path(t: int, h: int, w: int, y_frac: float, direction: int) -> np.ndarray:
    """A disc of radius h/9 crossing the frame sideways on a gentle wave (bool [T, H, W])."""
    yy, xx = np.mgrid[:h, :w]
    radius = h / 9.0
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        progress = i / max(t - 1, 1) if direction > 0 else 1.0 - i / max(t - 1, 1)
        cx = w * 0.2 + (w * 0.6) * progress
        cy = h * y_frac + h * 0.06 * np.sin(i / 6.0)
        masks[i] = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
    return masks


def moving_holes(t: int, h: int, w: int, avoid: np.ndarray | None) -> np.ndarray:
    """The disc path (7 heights x 2 directions) that comes least near the clip's annotated object.

    A hole over a moving foreground object (the rider, the player) has that object as its
    "truth", which no background-propagation method can recover; the bench measures background
    recovery, so the hole runs over background where the clip says where the object is.
    """
    candidates = [disc_path(t, h, w, y, d) for y in (0.5, 0.35, 0.65, 0.2, 0.8, 0.12, 0.88) for d in (1, -1)]
    if avoid is None:
        return candidates[0]
    near = flow_fill.dilate_holes(avoid, int(h / 9) + 8)
    return min(candidates, key=lambda c: int((c & near).sum()))


def telea(frames: np.ndarray, holes: np.ndarray) -> np.ndarray:
    return np.stack([cv2.inpaint(f, m.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA) for f, m in zip(frames, holes)])


def zero_motion(truth: np.ndarray, holes: np.ndarray) -> np.ndarray:
    out = truth.copy()
    for i in range(len(truth)):
        source = truth[i - 1] if i > 0 else truth[1]
        out[i][holes[i]] = source[holes[i]]
    return out


def psnr(result: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> float:
    diff = result[holes].astype(np.float64) - truth[holes].astype(np.float64)
    return float(10 * np.log10(255.0 ** 2 / max(np.mean(diff ** 2), 1e-12)))


def true_flows(truth: np.ndarray) -> list[np.ndarray]:
    """Flow from frame t to t+1 of the true frames (DIS medium)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    return [flow_fill.dis_flow(grey[i], grey[i + 1]) for i in range(len(grey) - 1)]


def warp_error(result: np.ndarray, flows: list[np.ndarray], holes: np.ndarray) -> float:
    """Mean |frame t - warp(frame t+1)| (0..255) over hole pixels of frame t, in-bounds only."""
    h, w = result.shape[1:3]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    total, count = 0.0, 0
    for i, flow in enumerate(flows):
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        warped = cv2.remap(result[i + 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        valid = holes[i] & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        total += float(np.abs(result[i].astype(np.float32) - warped)[valid].sum())
        count += int(valid.sum()) * 3
    return total / max(count, 1)


def run_clip(name: str, limit: int) -> bool:
    truth = load_clip(name, limit)
    t, h, w = truth.shape[:3]
    raw = moving_holes(t, h, w, object_masks(name, limit, (h, w)))
    holes = flow_fill.dilate_holes(raw, MASK_DILATION)
    given = truth.copy()
    given[raw] = (220, 40, 160)  # the "object" the methods must remove
    started = time.perf_counter()
    ours = flow_fill.flow_fill_inpaint(given, raw, flow_fill.FlowFillSettings(mask_dilation=MASK_DILATION))
    seconds = time.perf_counter() - started
    results = {"telea": telea(given, holes), "zero_motion": zero_motion(truth, holes), "flow_fill": ours}
    flows = true_flows(truth)
    floor = warp_error(truth, flows, holes)
    print(f"\n{name}: {t} frames from {CLIP_START.get(name, 0)}, {w}x{h}, hole {holes.mean() * 100:.1f} % of the frame, "
          f"flow_fill {seconds:.1f} s; warp-error floor (true frames) {floor:.2f}")
    scores = {}
    for method, frames in results.items():
        p, we = psnr(frames, truth, holes), warp_error(frames, flows, holes)
        scores[method] = (p, we - floor)
        print(f"  {method:12s} PSNR {p:6.2f} dB   warp error {we:6.2f}  (above floor {we - floor:6.2f})")
    ours_p, ours_we = scores["flow_fill"]
    gain_telea = ours_p - scores["telea"][0]
    gain_zero = ours_p - scores["zero_motion"][0]
    ratio = ours_we / max(scores["telea"][1], 1e-9)
    ok = gain_telea >= 6 and gain_zero >= 2 and ratio <= 0.25
    print(f"  flow_fill vs telea {gain_telea:+.2f} dB (bar +6), vs zero-motion {gain_zero:+.2f} dB (bar +2), "
          f"warp error above floor {ratio:.3f} x telea's (bar 0.25) -> {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--clips", nargs="+", default=["bmx-trees", "tennis", "running_car"])
    args = parser.parse_args()
    print(header("bench_flow_fill", with_torch=False, software=f"opencv {cv2.__version__}, numpy {np.__version__}"))
    results = [run_clip(name, args.frames) for name in args.clips]
    print(f"\n{sum(results)}/{len(results)} clips pass every bar")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
