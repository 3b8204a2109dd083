"""Single-threaded workers (``workers=``): the same numbers as a sequential one-thread run, the
caller's thread count kept, worker errors and cancels surfacing as in a sequential run.

Random-weight networks at the real architecture on small clips: the values do not matter, only
that the two ways of running give the same ones. Equality is exact: every task runs with one
OpenMP thread whichever worker runs it, and the results are combined in the sequential order.
"""
from __future__ import annotations

import threading

import pytest
import torch

from cancel_timing import CANCEL_BOUND_S, CancelTimer
from core_testing import STAGE_MODULES, boxed_clip, random_models
from propainter_core.config import InpaintSettings
from propainter_core.pipeline import stages
from propainter_core.pipeline.errors import Cancelled, InpaintInputError
from propainter_core.pipeline.models import ProPainterModels
from propainter_core.pipeline.run import run_inpaint
from propainter_core.pipeline.workers import Workers, resolve_workers
from propainter_core.raft import bidirectional_flow


@pytest.fixture(scope="module")
def models() -> ProPainterModels:
    return random_models(0)


@pytest.fixture
def threads():
    """Run at 2 torch threads (so that ``"auto"`` picks workers) and put the count back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def clip(frames: int, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    images, masks = boxed_clip(frames, size)
    masks[2, :, :] = 0  # a local frame without a hole: the window skips its decoding
    return images, masks


def _one_thread_sequential(function):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return function()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("windows_at_once, caller_threads", [(1, 1), (2, 2)])
def test_two_workers_give_the_sequential_one_thread_output(models, threads, monkeypatch, windows_at_once,
                                                          caller_threads):
    # 14 frames: 2 RAFT clips, 3 generator windows with shared reference frames. Windows one by
    # one (the default) run inline at the caller's threads, so the caller runs at one thread to
    # compare exactly; two at once run on the workers at one thread each.
    monkeypatch.setattr(stages, "GENERATOR_WINDOWS_AT_ONCE", windows_at_once)
    images, masks = clip(14)
    settings = InpaintSettings(raft_iter=2, neighbor_length=6, ref_stride=4)
    expected = _one_thread_sequential(lambda: run_inpaint(images, masks, models, settings, workers=1))
    torch.set_num_threads(caller_threads)
    ours = run_inpaint(images, masks, models, settings, workers=2)
    assert torch.equal(ours, expected)
    # and the generator saw something to fill: the output differs from the input inside the hole
    assert not torch.equal(ours[:, 40:80, 50:90], images[:, 40:80, 50:90])


def test_raft_flows_are_identical_on_workers(models, threads):
    frames = torch.rand(1, 7, 3, 128, 128, generator=torch.Generator().manual_seed(3)) * 2 - 1
    expected = _one_thread_sequential(lambda: bidirectional_flow(models.raft, frames, iters=3, max_pairs=3))
    with torch.no_grad(), Workers(2) as workers:
        ours = bidirectional_flow(models.raft, frames, iters=3, max_pairs=3, mapper=workers.map)
    for a, b in zip(ours, expected):
        assert torch.equal(a, b)


def test_flow_completion_directions_are_identical_on_workers(models, threads):
    generator = torch.Generator().manual_seed(4)
    flows_f, flows_b = (torch.randn(1, 5, 2, 64, 64, generator=generator) for _ in range(2))
    masks = (torch.rand(1, 6, 1, 64, 64, generator=generator) > 0.7).float()
    network = models.flow_completion
    with torch.no_grad():
        expected = _one_thread_sequential(lambda: network.complete_bidirectional(flows_f, flows_b, masks))
        with Workers(2) as workers:
            ours = network.complete_bidirectional(flows_f, flows_b, masks, mapper=workers.map)
    for a, b in zip(ours, expected):
        assert torch.equal(a, b)


def test_the_callers_thread_count_is_kept(models, threads):
    seen: dict[str, list[int]] = {"raft": [], "generator": []}
    hooks = [models.raft.fnet.register_forward_pre_hook(lambda *_: seen["raft"].append(torch.get_num_threads())),
             models.generator.encoder.register_forward_pre_hook(
                 lambda *_: seen["generator"].append(torch.get_num_threads()))]
    try:
        images, masks = clip(6)
        run_inpaint(images, masks, models, InpaintSettings(raft_iter=1), workers=2)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen["raft"] and set(seen["raft"]) == {1}  # RAFT's encoder ran on the workers, one thread each
    assert seen["generator"] and set(seen["generator"]) == {threads}  # the generator inline, at the caller's
    assert torch.get_num_threads() == threads
    # a thread started afterwards gets the caller's count too (the count new threads start with
    # is process-wide and the workers had set it to 1)
    fresh: list[int] = []
    thread = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert fresh == [threads]
    assert not [t for t in threading.enumerate() if t.name.startswith("propainter-worker")]


def test_grad_mode_and_autocast_of_the_caller_reach_the_workers(threads):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), Workers(2) as workers:
        modes = list(workers.map(lambda _: (torch.is_grad_enabled(), torch.is_autocast_enabled("cpu")),
                                 range(3)))
    assert modes == [(False, True)] * 3


def test_an_error_in_a_worker_is_raised_as_itself(models, threads):
    calls: list[int] = []

    def fail_on_third(*_):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker failure for the test")

    hook = models.raft.update_block.encoder.register_forward_pre_hook(fail_on_third)
    try:
        images, masks = clip(6)
        with pytest.raises(RuntimeError, match="worker failure for the test"):
            run_inpaint(images, masks, models, InpaintSettings(raft_iter=4), workers=2)
    finally:
        hook.remove()
    assert not [t for t in threading.enumerate() if t.name.startswith("propainter-worker")]
    # the networks are left without hooks and the next run works
    images, masks = clip(4)
    assert run_inpaint(images, masks, models, InpaintSettings(raft_iter=1), workers=2).shape == (4, 128, 128, 3)


STAGES = {stage: STAGE_MODULES[stage] for stage in ("raft refinement", "flow completion", "generator window")}


@pytest.mark.parametrize("stage", list(STAGES))
def test_cancel_lands_within_the_bound_on_workers(models, threads, stage):
    images, masks = clip(8)
    timer = CancelTimer(delay=0.3)
    handle = STAGES[stage](models).register_forward_pre_hook(timer.arm)
    try:
        with pytest.raises(Cancelled):
            iters = 12 if stage.startswith("raft") else 1
            run_inpaint(images, masks, models, InpaintSettings(raft_iter=iters), should_cancel=timer.is_set,
                        workers=2)
        latency = timer.latency()
    finally:
        handle.remove()
        timer.cancel()
    assert latency < CANCEL_BOUND_S, f"{stage}: stopped {latency:.2f} s after the cancel request"
    assert not [t for t in threading.enumerate() if t.name.startswith("propainter-worker")]


def test_workers_option(threads):
    cpu = torch.device("cpu")
    assert resolve_workers("auto", cpu) == 2
    assert resolve_workers(3, cpu) == 3
    assert resolve_workers("auto", torch.device("cuda")) == 1
    assert resolve_workers(2, torch.device("cuda")) == 1
    torch.set_num_threads(1)
    assert resolve_workers("auto", cpu) == 1
    for bad in (0, -1, True, "two", 1.5):
        with pytest.raises(InpaintInputError, match="workers must be"):
            resolve_workers(bad, cpu)


def test_workers_share_the_callers_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        with Workers(2) as workers:
            counts = list(workers.map(lambda _: torch.get_num_threads(), range(4)))
        assert counts == [2] * 4  # half each
        with Workers(3) as workers:
            assert list(workers.map(lambda _: torch.get_num_threads(), range(3))) == [1] * 3
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def test_work_one_at_a_time_runs_inline_at_the_callers_threads():
    """Pairs run on the workers at half the threads each, a lone task (the generator, flow
    completion) inline at all of them: a 16-thread CPU must not run the generator at 8."""
    before = torch.get_num_threads()
    where = lambda _: (threading.current_thread() is threading.main_thread(), torch.get_num_threads())
    try:
        torch.set_num_threads(4)
        with Workers(2) as workers:
            assert list(workers.map(where, range(2))) == [(False, 2)] * 2
            assert list(workers.map(where, range(2), at_once=1)) == [(True, 4)] * 2
            assert workers.call(lambda: where(None)) == (True, 4)
        torch.set_num_threads(2)
        with Workers(2) as workers:
            assert list(workers.map(where, range(2))) == [(False, 1)] * 2
            assert workers.call(lambda: where(None)) == (True, 2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
