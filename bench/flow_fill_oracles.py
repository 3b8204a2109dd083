"""Where flow_fill's missing dB are: issue 13's protocol with one stage given the truth (bench-only oracles).

Each oracle replaces one thing the weights-free backend estimates by what the TRUE frames say,
runs the protocol of ``bench_flow_fill.py`` (same clips, holes, scoring) and prints the same table
and means. What an oracle gains is what a better estimate of that thing could gain at most; what
it does not gain is not worth estimating better. None of this is a method: every oracle reads the
hidden truth.

Oracles (``--oracle``):

* ``hole-flow``: inside the hole (dilated 4, both frames of a pair), every flow the backend
  completes (the background's and the moving layer's own, forward and backward) is replaced by
  DIS (medium preset, the backend's own) measured on the true frames;
* ``bg-flow`` / ``own-flow``: only the background's / only the moving layer's flows, as above;
* ``ring-flow``: only the ring between that hole and the flow-completion region (the hole dilated
  by ``flow_mask_dilation``), where the backend also replaces the measured flow;
* ``own-band``: the moving layer's own flow is completed from its pixels right up to the source
  frame's smoothed-over hole, each with its TRUE flow, instead of from those at least
  ``OWN_FLOW_MARGIN`` px away with their measured flow (what a measurement of the thing's motion
  beside the hole that the smoothed-over blob does not disturb could give);
* ``layers``: which hole pixels hide the moving thing (and follow its own motion) is the true
  object mask (ellipse holes; on object-shaped holes it is empty).

Usage: python bench/flow_fill_oracles.py --oracle hole-flow [--clips ...] [--sets ...] [--jobs 2]
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys

import cv2
import numpy as np

import bench_flow_fill as protocol
from _common import header, import_pack

ORACLES = ("hole-flow", "bg-flow", "own-flow", "ring-flow", "own-band", "layers")
# The hole as the backend fills it: the official mask dilation.
HOLE_DILATION = 4


def _true_flows(truth_grey: list[np.ndarray], pair: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """DIS forward and backward flow between true frames ``pair`` and ``pair + 1`` at the backend's ``size``."""
    h, w = size
    first, second = (cv2.resize(truth_grey[i], (w, h), interpolation=cv2.INTER_AREA) for i in (pair, pair + 1))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(first, second, None), dis.calc(second, first, None)


def install(oracle: str, truth: np.ndarray, objects: np.ndarray) -> None:
    """Patch the backend's pipeline module so that ``oracle`` reads ``truth`` / ``objects``."""
    from vanish.nodes.ops.flow_fill import pipeline
    from vanish.nodes.ops.flow_fill.settings import dilate_holes

    if oracle == "layers":
        def true_layers(win, local, hole, max_steps, should_cancel=None):
            shown = objects[win.start + local]
            if shown.shape != hole.shape:
                shown = cv2.resize(shown.astype(np.uint8), hole.shape[::-1],
                                   interpolation=cv2.INTER_NEAREST).astype(bool)
            return hole & shown, hole & shown
        pipeline.hole_layers = true_layers
        return

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in truth]
    estimate = pipeline.pair_flows
    if oracle == "own-band":
        _install_own_band(pipeline, estimate, grey)
        return

    def with_true_flows(gray, raw, pair, settings, should_cancel=None, draw=0):
        flows = estimate(gray, raw, pair, settings, should_cancel, draw)
        both = raw(pair) | raw(pair + 1)
        where = dilate_holes(both, HOLE_DILATION)
        if oracle == "ring-flow":
            where = dilate_holes(both, settings.flow_mask_dilation) & ~where
        forward, backward = _true_flows(grey, pair, gray(pair).shape)
        where = where[..., None]

        def put(true, estimated):
            return None if estimated is None else np.where(where, true, estimated)

        changed = {}
        if oracle in ("hole-flow", "bg-flow", "ring-flow"):
            changed.update(forward=put(forward, flows.forward), backward=put(backward, flows.backward))
        if oracle in ("hole-flow", "own-flow", "ring-flow"):
            changed.update(own_forward=put(forward, flows.own_forward), own_backward=put(backward, flows.own_backward))
        return flows._replace(**changed)
    pipeline.pair_flows = with_true_flows


def _install_own_band(pipeline, estimate, grey: list[np.ndarray]) -> None:
    """The ``own-band`` oracle: ``complete_own_flow`` gets the true flow outside the source hole and
    fixes every layer pixel there (``pair_flows`` calls it forward, then backward)."""
    from vanish.nodes.ops.flow_fill import flow_completion

    complete_own = flow_completion.complete_own_flow
    pending: list[np.ndarray] = []

    def with_true_pair(gray, raw, pair, settings, should_cancel=None, draw=0):
        pending[:] = _true_flows(grey, pair, gray(pair).shape)
        return estimate(gray, raw, pair, settings, should_cancel, draw)

    def own_from_band(flow, hole, moving, unmeasured=None, relax_iterations=40, disturbed=None, should_cancel=None):
        true = pending.pop(0)
        band = hole if unmeasured is None else hole & ~unmeasured
        return complete_own(np.where(band[..., None], true, flow), hole, moving, unmeasured, relax_iterations,
                            disturbed=unmeasured, should_cancel=should_cancel)

    flow_completion.complete_own_flow = own_from_band
    pipeline.pair_flows = with_true_pair


def _worker(args: tuple[str, str, str]) -> protocol.CaseResult:
    oracle, clip, hole_set = args
    import_pack()  # a fresh interpreter per case (maxtasksperchild=1): the patch never leaks into another case
    truth, objects = protocol.load_clip(clip)
    install(oracle, truth, objects)
    return protocol.run_case(clip, hole_set, threads=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", required=True, choices=ORACLES)
    protocol.add_case_arguments(parser)
    args = parser.parse_args()
    print(header("flow_fill_oracles", with_torch=False, software=f"opencv {cv2.__version__}"))
    print(f"oracle: {args.oracle} (reads the true frames: an upper bound, not a method)")
    tasks = [(args.oracle, clip, hole_set) for hole_set in args.sets for clip in args.clips]
    cases: list[protocol.CaseResult] = []
    with multiprocessing.get_context("spawn").Pool(max(1, args.jobs), maxtasksperchild=1) as pool:
        for case in pool.imap(_worker, tasks):
            print(protocol.case_line(case), flush=True)
            cases.append(case)
    for hole_set in args.sets:
        print(protocol.set_summary(cases, hole_set)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
