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
of the profiled run; the stages nest as indented). ``--single-draw`` times one fill instead of the
mean of two (the loader's "flow_fill fast (no weights, one fill)").

``--against DIR`` times another checkout of the pack beside this one, on the same machine at the
same time: each case runs in a fresh process per checkout, the two alternately, ``--rounds``
times, and the least CPU time of each is kept; the table adds the other's time and the ratio.
Issue 13's bar is such a ratio, against the code at the issue's filing (commit a0af6ac; its
``bench/`` is not used, only its pack): ``git worktree add ../vanish-at-filing a0af6ac``, then
``--against ../vanish-at-filing``. The absolute figures move with the machine's load and
neighbours by a quarter from one hour to the next; only a ratio measured this way compares.

Usage: python bench/bench_flow_fill_speed.py [--cases tennis-432 camel-854 camel-1080] [--stages]
       [--single-draw] [--against DIR [--rounds 2]]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import bench_flow_fill as protocol
from _common import git_commit, header, import_pack, run_in_fresh_process

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


def stage_shares(given: np.ndarray, holes: np.ndarray, single_draw: bool = False) -> list[tuple[str, int, float]]:
    """``(label, depth, share of the profiled run)`` for :data:`STAGES`."""
    profile = cProfile.Profile()
    profile.runcall(protocol.flow_fill_node, given, holes, single_draw)
    stats = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "flow_fill_node")
    shares = []
    for label, depth, module, function in STAGES:
        seconds = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                      if name == function and file.replace("\\", "/").endswith("flow_fill/" + module))
        shares.append((label, depth, seconds / total))
    return shares


def time_case(case: str, single_draw: bool = False, root: str | None = None) -> list[tuple]:
    """:func:`time_inputs` with the pack of the checkout ``root`` on one thread: what a fresh process
    runs when two checkouts are timed (see the module's docstring)."""
    import_pack(root)
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    return time_inputs(case, single_draw)


def time_inputs(case: str, single_draw: bool = False) -> list[tuple]:
    """``(label, frames, "WxH", hole %, CPU s per frame, wall s)`` for each input of ``case``."""
    rows = []
    for label, given, holes in case_inputs(case):
        cpu, wall = time.process_time(), time.perf_counter()
        protocol.flow_fill_node(given, holes, single_draw)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        t, h, w = holes.shape
        rows.append((label, t, f"{w}x{h}", 100 * float(holes.mean()), cpu / t, wall))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--stages", action="store_true", help="also print where each case's time goes")
    parser.add_argument("--single-draw", action="store_true",
                        help="time one fill instead of the mean of two (the loader's 'flow_fill fast')")
    parser.add_argument("--against", metavar="DIR", type=Path,
                        help="another checkout of the pack to time beside this one (e.g. issue 13's filing, a0af6ac)")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: runs of each checkout, alternately")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "__init__.py").is_file():
        parser.error(f"--against {args.against}: no pack there (no __init__.py); give a checkout of the "
                     "repository, e.g. one made with 'git worktree add ../vanish-at-filing a0af6ac'")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    import_pack()
    draws = "one fill" if args.single_draw else "the mean of two fills"
    print(header("bench_flow_fill_speed", threads=1,
                 software=f"opencv {cv2.__version__}, numpy {np.__version__}; flow_fill: {draws}"))
    if args.against is not None:
        return _compare(args)
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    print("| case | frames | size | hole % | CPU s per frame | wall s |")
    print("|---|---|---|---|---|---|")
    profiled = []
    for case in args.cases:
        for label, frames, size, hole, cpu, wall in time_inputs(case, args.single_draw):
            print(f"| {label} | {frames} | {size} | {hole:.1f} | {cpu:.3f} | {wall:.1f} |")
            sys.stdout.flush()
        if args.stages:
            profiled += [(label, stage_shares(given, holes, args.single_draw)) for label, given, holes in case_inputs(case)]
    for label, shares in profiled:
        print(f"\n{label}, share of the profiled run:")
        for stage, depth, share in shares:
            print(f"  {'  ' * depth}{stage}: {100 * share:.0f} %")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """The table of this checkout against ``args.against`` (see the module's docstring)."""
    other = str(args.against.resolve())
    print(f"against:  {other} (commit {git_commit(other)}), {args.rounds} rounds, fresh processes, alternately")
    print("| case | frames | size | hole % | CPU s per frame, this | that | ratio |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        best: dict[str, tuple[float, float]] = {}  # label -> least CPU s per frame, this and that
        for _ in range(args.rounds):
            mine = run_in_fresh_process(time_case, case, args.single_draw, None)
            theirs = run_in_fresh_process(time_case, case, False, other)
            for row, their_row in zip(mine, theirs):
                own, old = best.get(row[0], (row[4], their_row[4]))
                best[row[0]] = (min(own, row[4]), min(old, their_row[4]))
        for label, frames, size, hole, _, _ in mine:
            own, old = best[label]
            print(f"| {label} | {frames} | {size} | {hole:.1f} | {own:.3f} | {old:.3f} | {own / old:.2f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
