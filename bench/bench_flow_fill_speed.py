"""CPU seconds per frame of the weights-free backend (flow_fill), at the issue's size and on HD frames.

The backend runs as the ProPainter Inpaint node runs it with default settings (``bench_flow_fill.
flow_fill_node``: ``inpaint_runner.run_inpaint``, backend ``flow_fill``), on one thread (OpenCV
and torch), and the process CPU time is divided by the frames. Three cases by default:

* ``tennis-432``: tennis, 20 frames, 432x240, the issue-13 ellipse and object-shaped holes: the
  size and clip issue 13's speed bar is judged on (1.25 x the CPU time at the issue's filing:
  0.709 / 0.643 s per frame);
* ``camel-854``: camel, 16 frames at DAVIS's own 854x480, the camel itself removed (its mask as
  given, the node's default dilation): what a user's real removal costs;
* ``camel-1080``: the same, 8 frames upscaled to 1920x1080 (cubic).

``--stages`` runs every case a second time under cProfile and prints where its time goes (shares
of the profiled run; the stages nest as indented).

Usage: python bench/bench_flow_fill_speed.py [--cases tennis-432 camel-854 camel-1080] [--stages]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

import cv2
import numpy as np

import bench_flow_fill as protocol
from _common import header, import_pack

CASES = ("tennis-432", "camel-854", "camel-1080")

# (label, depth, module file, function): the stages --stages reports, by cumulative time.
STAGES = (
    ("flows: DIS, completion, layers", 0, "flow_completion.py", "pair_flows"),
    ("propagation: traces, vote", 0, "propagation.py", "propagate"),
    ("pair match", 1, "pair_match.py", "match"),
    ("finishing a frame", 0, "pipeline.py", "finish_frame"),
    ("spatial fill", 1, "spatial_fill.py", "carry_and_fill"),
    ("boundary match", 1, "blending.py", "match_boundary"),
    ("seam removal", 1, "blending.py", "remove_seams"),
)


def _davis(name: str, frames: int, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """The clip's first ``frames`` frames RGB uint8 and object masks bool, at ``size (w, h)`` or as stored."""
    folder = protocol.clip_folder(name)
    images, masks = [], []
    for frame_file, mask_file in zip(sorted((folder / "frames").iterdir())[:frames],
                                     sorted((folder / "masks").iterdir())[:frames]):
        image = cv2.cvtColor(cv2.imread(str(frame_file)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE) > 0
        if size is not None:
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def case_inputs(case: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, frames uint8 [T, H, W, 3], holes bool [T, H, W])`` of one case."""
    if case == "tennis-432":
        truth, objects = protocol.load_clip("tennis", 20)
        out = []
        for hole_set in protocol.SETS:
            holes = protocol.case_holes("tennis", hole_set, objects)
            given = truth.copy()
            given[holes] = 0
            out.append((f"{case} {hole_set}", given, holes))
        return out
    frames, size = (16, None) if case == "camel-854" else (8, (1920, 1080))
    given, holes = _davis("camel", frames, size)
    return [(f"{case} object removed", given, holes)]


def stage_shares(given: np.ndarray, holes: np.ndarray) -> list[tuple[str, int, float]]:
    """``(label, depth, share of the profiled run)`` for :data:`STAGES`."""
    profile = cProfile.Profile()
    profile.runcall(protocol.flow_fill_node, given, holes)
    stats = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "flow_fill_node")
    shares = []
    for label, depth, module, function in STAGES:
        seconds = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                      if name == function and file.replace("\\", "/").endswith("flow_fill/" + module))
        shares.append((label, depth, seconds / total))
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--stages", action="store_true", help="also print where each case's time goes")
    args = parser.parse_args()
    import_pack()
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    print(header("bench_flow_fill_speed", threads=1, software=f"opencv {cv2.__version__}, numpy {np.__version__}"))
    print("| case | frames | size | hole % | CPU s per frame | wall s |")
    print("|---|---|---|---|---|---|")
    profiled = []
    for case in args.cases:
        for label, given, holes in case_inputs(case):
            cpu, wall = time.process_time(), time.perf_counter()
            protocol.flow_fill_node(given, holes)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            t, h, w = holes.shape
            print(f"| {label} | {t} | {w}x{h} | {100 * holes.mean():.1f} | {cpu / t:.3f} | {wall:.1f} |")
            sys.stdout.flush()
            if args.stages:
                profiled.append((label, stage_shares(given, holes)))
    for label, shares in profiled:
        print(f"\n{label}, share of the profiled run:")
        for stage, depth, share in shares:
            print(f"  {'  ' * depth}{stage}: {100 * share:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
