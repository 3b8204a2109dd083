"""How much of flow_fill's error is the variance of its estimates: issue 13's protocol, each case filled twice.

Every case of ``bench_flow_fill.py`` (same clips, holes and scoring) is filled by the backend as the
ProPainter Inpaint node runs it, then once more with one thing changed that leaves the method as it is
but draws its estimates differently, and the two fills' mean is scored too. Where the two fills are
about as good and the mean is better than either, their errors are partly independent: what the mean
gains is the share of the error that comes from the arbitrary draw (which DIS grid, which direction
the recursion runs), not from anything the frames show. This measurement is why the backend itself
fills every clip twice since issue 13's twentieth session (``FlowFillSettings.second_draw``: its second
draw measures DIS on the frames mirrored and one level finer) and averages the two. Here each fill is
the backend's own, so the ``fine`` and ``mirrored`` second fills replace DIS in both of its draws.

Second fills (``--second``):

* ``fine``: DIS (the backend's medium preset) down to full resolution (finest scale 0 instead of 1);
* ``mirrored``: DIS on the frames mirrored left-right, its flow mirrored back (the same estimator on
  another pixel grid);
* ``reversed``: the clip run backwards in time (the carried fill and the temporal filter start from the
  last frame).

Usage: python bench/flow_fill_ensemble.py --second fine [--clips ...] [--sets ...] [--jobs 2]
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys

import cv2
import numpy as np

import bench_flow_fill as protocol
from _common import header, import_pack

SECOND_FILLS = ("fine", "mirrored", "reversed")


def _fine_dis(source: np.ndarray, target: np.ndarray, preset: str = "medium", draw: int = 0) -> np.ndarray:
    """Stands in for ``flow_completion.dis_flow``: the medium preset down to full resolution."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    return dis.calc(source, target, None)


def _mirrored_dis(source: np.ndarray, target: np.ndarray, preset: str = "medium", draw: int = 0) -> np.ndarray:
    """Stands in for ``flow_completion.dis_flow``: the medium preset on the frames mirrored left-right."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(np.ascontiguousarray(source[:, ::-1]), np.ascontiguousarray(target[:, ::-1]), None)
    flow = np.ascontiguousarray(flow[:, ::-1])
    flow[..., 0] *= -1.0
    return flow


def second_fill(second: str, given: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The case filled with ``second``'s change (see the module's docstring)."""
    if second == "reversed":
        out, _ = protocol.flow_fill_node(np.ascontiguousarray(given[::-1]), np.ascontiguousarray(holes[::-1]))
        return np.ascontiguousarray(out[::-1])
    from vanish.nodes.ops.flow_fill import flow_completion

    estimate = flow_completion.dis_flow
    flow_completion.dis_flow = _fine_dis if second == "fine" else _mirrored_dis
    try:
        out, _ = protocol.flow_fill_node(given, holes)
    finally:
        flow_completion.dis_flow = estimate
    return out


def _worker(args: tuple[str, str, str]) -> tuple[str, str, dict[str, float]]:
    second, clip, hole_set = args
    import_pack()
    cv2.setNumThreads(1)
    truth, objects = protocol.load_clip(clip)
    holes = protocol.case_holes(clip, hole_set, objects)
    given = truth.copy()
    given[holes] = 0
    first, _ = protocol.flow_fill_node(given, holes)
    other = second_fill(second, given, holes)
    mean = np.clip(np.rint((first.astype(np.float32) + other.astype(np.float32)) / 2.0), 0, 255).astype(np.uint8)
    flows = protocol.farneback_flows(truth)
    fills = {"telea": protocol.telea(given, holes), "flow_fill": first, second: other, "mean": mean}
    return clip, hole_set, {name: protocol.score(fill, truth, holes, flows).psnr for name, fill in fills.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--second", required=True, choices=SECOND_FILLS)
    protocol.add_case_arguments(parser)
    args = parser.parse_args()
    print(header("flow_fill_ensemble", with_torch=False, software=f"opencv {cv2.__version__}"))
    print(f"second fill: {args.second}; PSNR dB inside the hole")
    columns = ("telea", "flow_fill", args.second, "mean")
    print("| clip | holes | " + " | ".join(columns) + " | mean - flow_fill |")
    print("|---" * (len(columns) + 3) + "|")
    tasks = [(args.second, clip, hole_set) for hole_set in args.sets for clip in args.clips]
    rows: list[tuple[str, str, dict[str, float]]] = []
    with multiprocessing.get_context("spawn").Pool(max(1, args.jobs), maxtasksperchild=1) as pool:
        for clip, hole_set, psnr in pool.imap(_worker, tasks):
            rows.append((clip, hole_set, psnr))
            print(f"| {clip} | {hole_set} | " + " | ".join(f"{psnr[c]:.2f}" for c in columns)
                  + f" | {psnr['mean'] - psnr['flow_fill']:+.2f} |", flush=True)
    for hole_set in args.sets:
        chosen = [psnr for _, s, psnr in rows if s == hole_set]
        if chosen:
            means = {c: float(np.mean([p[c] for p in chosen])) for c in columns}
            better = sum(p["mean"] > p["flow_fill"] for p in chosen)
            print(f"{hole_set} mean over {len(chosen)} clips: " + ", ".join(f"{c} {means[c]:.2f}" for c in columns)
                  + f" dB; mean - flow_fill {means['mean'] - means['flow_fill']:+.2f} dB, higher on {better} of "
                    f"{len(chosen)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
