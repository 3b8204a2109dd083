"""Quality of the weights-free backend against two baselines, on real clips with known truth.

A synthetic hole (a disc that moves across the frame) is cut over real footage, so the true
pixels behind it are known. The hole is painted with a flat "object" colour in the input the
methods see. Three fills are compared inside the dilated hole (the region every method fills):

* ``telea``: OpenCV Telea inpainting per frame (the flickering baseline),
* ``zero_motion``: the previous frame's TRUE pixels copied into the hole (a cheat that knows
  the truth but ignores motion; frame 0 copies frame 1),
* ``flow_fill``: ours (``nodes/ops/flow_fill.py``).

Every frame of every clip is used: each clip is cut into spans of ``--frames`` frames and the
disc crosses the frame once per span. The hole runs over background: a hole over a moving
object (the rider, the player, a passing car) has that object as its "truth", which no
background-recovery method can bring back. bmx-trees and tennis say where their object is
(the annotation); running_car has none, so moving things are found in its TRUE frames as
pixels that differ by more than 30 levels from the next frame aligned by a homography fitted
to the whole frame (DIS flow + RANSAC); of 14 disc paths the one that comes least near them
is taken. ``--over-anything`` keeps the first path instead, whatever passes under it.

Metrics: PSNR over all hole pixels, and warp error: the mean absolute difference (0..255)
between frame t and frame t+1 warped back along the flow of the TRUE frames, over the hole
pixels of frame t. The true frames score a floor with the same flow; the bar compares
``method - floor``. Each span is reported, and each clip pooled over its spans (squared errors
and absolute differences summed, not dB averaged).

Bars (issue 6): PSNR >= Telea + 6 dB and >= zero-motion + 2 dB; warp error above the floor
<= 1/4 of Telea's.

Usage: python bench/bench_flow_fill.py [--frames 50] [--clips bmx-trees tennis running_car]
       [--over-anything]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from shared_paths import CLIPS_DIR  # noqa: E402

from _common import header  # noqa: E402

from _common import import_pack  # noqa: E402

import_pack()  # the pack as the package ``vanish``, without ComfyUI
from vanish.nodes.ops import flow_fill  # noqa: E402

MASK_DILATION = 4


def load_clip(name: str, start: int, limit: int) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` RGB, frames ``start .. start+limit-1`` (fewer at the end).

    running_car is halved to 486x270 to keep the bench short.
    """
    folder = CLIPS_DIR / name
    if (folder / "frames").is_dir():
        files = sorted((folder / "frames").iterdir())[start:start + limit]
        return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])
    import av

    frames = []
    with av.open(str(folder / f"{name}.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA))
            if len(frames) == limit:
                break
    return np.stack(frames)


def clip_length(name: str) -> int:
    folder = CLIPS_DIR / name
    if (folder / "frames").is_dir():
        return len(list((folder / "frames").iterdir()))
    import av

    with av.open(str(folder / f"{name}.mp4")) as container:
        return sum(1 for _ in container.decode(video=0))


def object_masks(name: str, start: int, truth: np.ndarray) -> np.ndarray:
    """Where the clip's moving objects are (bool ``[T, H, W]``): its annotation, or motion."""
    folder = CLIPS_DIR / name / "masks"
    shape = truth.shape[1:3]
    if folder.is_dir():
        files = sorted(folder.iterdir())[start:start + len(truth)]
        return np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), shape[::-1],
                                    interpolation=cv2.INTER_NEAREST) > 0 for f in files])
    return independently_moving(truth)


def independently_moving(truth: np.ndarray) -> np.ndarray:
    """Pixels of the TRUE frames that the camera's motion does not explain (bool ``[T, H, W]``).

    Frame t is compared with its neighbour aligned by a homography fitted (RANSAC) to the DIS
    flow of the whole frame; differences above 30 levels in any channel, cleaned of specks.
    """
    t, h, w = truth.shape[:3]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moving = np.zeros((t, h, w), bool)
    for i in range(t):
        j = i + 1 if i + 1 < t else i - 1
        matrix = flow_fill.fit_camera(flow_fill.dis_flow(grey[i], grey[j]), np.ones((h, w), bool))
        camera = flow_fill.camera_flow(matrix, (0, h, 0, w))
        aligned = cv2.remap(truth[j].astype(np.float32), gx + camera[..., 0], gy + camera[..., 1],
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        differs = (np.abs(aligned - truth[i]).max(-1) > 30).astype(np.uint8)
        moving[i] = cv2.morphologyEx(differs, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)).astype(bool)
    return moving


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


def true_flows(truth: np.ndarray) -> list[np.ndarray]:
    """Flow from frame t to t+1 of the true frames (DIS medium)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    return [flow_fill.dis_flow(grey[i], grey[i + 1]) for i in range(len(grey) - 1)]


def warp_sums(result: np.ndarray, flows: list[np.ndarray], holes: np.ndarray) -> tuple[float, int]:
    """Sum and count of |frame t - warp(frame t+1)| (0..255) over hole pixels of frame t, in-bounds only."""
    h, w = result.shape[1:3]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    total, count = 0.0, 0
    for i, flow in enumerate(flows):
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        warped = cv2.remap(result[i + 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        valid = holes[i] & (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        total += float(np.abs(result[i].astype(np.float32) - warped)[valid].sum())
        count += int(valid.sum()) * 3
    return total, count


@dataclass
class Score:
    """Sums that pool over spans: squared error and its count, warp-error sum and its count."""

    squared: float = 0.0
    pixels: int = 0
    warp: float = 0.0
    warp_count: int = 0

    def add(self, other: "Score") -> None:
        self.squared += other.squared
        self.pixels += other.pixels
        self.warp += other.warp
        self.warp_count += other.warp_count

    @property
    def psnr(self) -> float:
        return float(10 * np.log10(255.0 ** 2 / max(self.squared / max(self.pixels, 1), 1e-12)))

    @property
    def warp_error(self) -> float:
        return self.warp / max(self.warp_count, 1)


def score(result: np.ndarray, truth: np.ndarray, holes: np.ndarray, flows: list[np.ndarray]) -> Score:
    diff = result[holes].astype(np.float64) - truth[holes].astype(np.float64)
    total, count = warp_sums(result, flows, holes)
    return Score(float((diff ** 2).sum()), diff.size, total, count)


def verdict(scores: dict[str, Score]) -> tuple[bool, str]:
    floor = scores["truth"].warp_error
    above = {m: scores[m].warp_error - floor for m in scores}
    gain_telea = scores["flow_fill"].psnr - scores["telea"].psnr
    gain_zero = scores["flow_fill"].psnr - scores["zero_motion"].psnr
    ratio = above["flow_fill"] / max(above["telea"], 1e-9)
    ok = gain_telea >= 6 and gain_zero >= 2 and ratio <= 0.25
    return ok, (f"PSNR telea {scores['telea'].psnr:5.2f}, zero-motion {scores['zero_motion'].psnr:5.2f}, "
                f"flow_fill {scores['flow_fill'].psnr:5.2f} dB; flow_fill vs telea {gain_telea:+.2f} dB (bar +6), "
                f"vs zero-motion {gain_zero:+.2f} dB (bar +2); warp error above floor {floor:.2f}: "
                f"telea {above['telea']:.2f}, zero-motion {above['zero_motion']:.2f}, flow_fill {above['flow_fill']:.2f} "
                f"= {ratio:.3f} x telea's (bar 0.25) -> {'PASS' if ok else 'FAIL'}")


def run_span(name: str, start: int, limit: int, avoid_objects: bool) -> dict[str, Score]:
    truth = load_clip(name, start, limit)
    t, h, w = truth.shape[:3]
    raw = moving_holes(t, h, w, object_masks(name, start, truth) if avoid_objects else None)
    holes = flow_fill.dilate_holes(raw, MASK_DILATION)
    given = truth.copy()
    given[raw] = (220, 40, 160)  # the "object" the methods must remove
    started = time.perf_counter()
    ours = flow_fill.flow_fill_inpaint(given, raw, flow_fill.FlowFillSettings(mask_dilation=MASK_DILATION))
    seconds = time.perf_counter() - started
    flows = true_flows(truth)
    results = {"truth": truth, "telea": telea(given, holes), "zero_motion": zero_motion(truth, holes), "flow_fill": ours}
    scores = {method: score(frames, truth, holes, flows) for method, frames in results.items()}
    ok, line = verdict(scores)
    print(f"  {name} {start}-{start + t - 1} ({w}x{h}, hole {holes.mean() * 100:.1f} %, {seconds:.1f} s): {line}",
          flush=True)
    return scores


def run_clip(name: str, span: int, avoid_objects: bool) -> bool:
    length = clip_length(name)
    print(f"\n{name}: {length} frames in spans of {span}")
    pooled = {m: Score() for m in ("truth", "telea", "zero_motion", "flow_fill")}
    for start in range(0, length, span):
        if length - start < 8:
            break  # a tail too short for a crossing
        for method, value in run_span(name, start, span, avoid_objects).items():
            pooled[method].add(value)
    ok, line = verdict(pooled)
    print(f"  {name} pooled: {line}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="frames per span (one disc crossing)")
    parser.add_argument("--clips", nargs="+", default=["bmx-trees", "tennis", "running_car"])
    parser.add_argument("--over-anything", action="store_true",
                        help="keep the first disc path even where it crosses a moving object")
    args = parser.parse_args()
    print(header("bench_flow_fill", with_torch=False, software=f"opencv {cv2.__version__}, numpy {np.__version__}"))
    results = [run_clip(name, args.frames, not args.over_anything) for name in args.clips]
    print(f"\n{sum(results)}/{len(results)} clips pass every bar (pooled over their spans)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
