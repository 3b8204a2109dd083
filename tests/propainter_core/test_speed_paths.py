"""The faster paths of the core equal the official forms, and optional compilation falls back.

* RAFT's GRU with the context share precomputed and z/r fused (``UpdateBlock.step``) against
  the official form (``UpdateBlock.forward``): float summation order only, so within 1e-5
  relative (measured 2-4e-7), while a 1 % change of one gate weight moves it by ~1e-3.
* The split weights follow the parameters: after loading other weights the step uses them.
* ``compile_models``: where ``torch.compile`` fails (at wrapping or at the first call) the
  pipeline runs uncompiled with one warning, never an error, and gives the eager flows.
"""
from __future__ import annotations

import logging

import pytest
import torch

from propainter_core.pipeline import CompiledOrEager, ProPainterModels, compile_models
from propainter_core.raft import UpdateBlock, bidirectional_flow, build_raft

TOLERANCE = 1e-5


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def update_inputs():
    generator = torch.Generator().manual_seed(0)
    shape = (2, 128, 6, 10)
    return (torch.randn(shape, generator=generator).tanh(), torch.randn(shape, generator=generator).relu(),
            torch.randn(2, 324, 6, 10, generator=generator), torch.randn(2, 2, 6, 10, generator=generator))


def test_fused_gru_step_equals_the_official_update(update_inputs):
    torch.manual_seed(1)
    block = UpdateBlock().eval()
    hidden, context, corr, flow = update_inputs
    with torch.no_grad():
        expected = block(hidden, context, corr, flow)
        ours = block.step(hidden, block.context_terms(context), corr, flow)
        for a, b in zip(ours, expected):
            assert _relative(a, b) <= TOLERANCE
        # the inputs are left as they were (the step writes only into its own buffers)
        assert torch.equal(hidden, update_inputs[0]) and torch.equal(flow, update_inputs[3])


def test_split_weights_follow_loaded_weights(update_inputs):
    torch.manual_seed(2)
    block = UpdateBlock().eval()
    hidden, context, corr, flow = update_inputs
    with torch.no_grad():
        before = block.step(hidden, block.context_terms(context), corr, flow)[0]
        state = block.state_dict()
        state["gru.convr2.weight"] = state["gru.convr2.weight"] * 1.5
        block.load_state_dict(state)
        after = block.step(hidden, block.context_terms(context), corr, flow)[0]
        expected = block(hidden, context, corr, flow)[0]
    assert _relative(after, expected) <= TOLERANCE
    assert _relative(after, before) > 100 * TOLERANCE
    assert set(block.state_dict()) == set(state)  # no extra keys from the derived weights


def _models() -> ProPainterModels:
    torch.manual_seed(3)
    return ProPainterModels(raft=build_raft(), flow_completion=torch.nn.Identity(),
                            generator=torch.nn.Identity(), device=torch.device("cpu"))


def _raising_compiler(function):
    raise RuntimeError("no compiler here\nsecond line")


def _compiler_failing_at_call(function):
    def compiled(*args, **kwargs):
        raise RuntimeError("inductor backend failed")
    return compiled


@pytest.mark.parametrize("compiler", [_raising_compiler, _compiler_failing_at_call])
def test_compile_falls_back_with_one_log_line(compiler, caplog):
    models = _models()
    frames = torch.rand(1, 3, 3, 128, 128) * 2 - 1
    eager = bidirectional_flow(models.raft, frames, iters=3)
    with caplog.at_level(logging.INFO, logger="propainter_core.pipeline.compiled"):
        compile_models(models, compiler=compiler)
        compile_models(models, compiler=compiler)  # a second call keeps the first wrapper
        flows = bidirectional_flow(models.raft, frames, iters=3)
    step = models.raft.update_block.step
    assert isinstance(step, CompiledOrEager) and not step.compiled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "RAFT update step" in warnings[0].getMessage() and "uncompiled" in warnings[0].getMessage()
    for ours, expected in zip(flows, eager):
        assert torch.equal(ours, expected)


def test_compiled_step_is_used_when_it_works(caplog):
    """A compiler that works (here: an identity stand-in) serves every call and logs its time."""
    models = _models()
    frames = torch.rand(1, 2, 3, 128, 128) * 2 - 1
    eager = bidirectional_flow(models.raft, frames, iters=2)
    seen = []

    def stand_in(function):
        def compiled(*args, **kwargs):
            seen.append(1)
            return function(*args, **kwargs)
        return compiled

    with caplog.at_level(logging.INFO, logger="propainter_core.pipeline.compiled"):
        compile_models(models, compiler=stand_in)
        flows = bidirectional_flow(models.raft, frames, iters=2)
    assert len(seen) == 2 * 2  # two directions (one batch each) x two iterations
    assert models.raft.update_block.step.compile_seconds is not None
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    for ours, expected in zip(flows, eager):
        assert torch.equal(ours, expected)


def test_raft_batches_keep_the_iteration_buffers_under_the_mmap_threshold(monkeypatch):
    """A batch's correlation look-up (324 floats per 1/8-grid pixel and pair) stays under 32 MiB,
    where glibc reuses freed memory instead of mapping fresh pages; the correlation budget still
    rules at large sizes. The pairs are then split into batches of even size."""
    from propainter_core.pipeline import stages

    seen = []

    def record(raft, frames, *, iters, max_pairs, mapper=map):
        seen.append(max_pairs)
        zeros = torch.zeros(1, frames.shape[1] - 1, 2, *frames.shape[-2:])
        return zeros, zeros

    monkeypatch.setattr(stages, "bidirectional_flow", record)
    for height, width in ((240, 432), (128, 128), (720, 1280)):
        stages.estimate_flows(torch.nn.Identity(), torch.zeros(1, 2, 3, height, width), 1, lambda: None)
    assert seen == [15, 101, 1]  # 324 * 1620 * 4 B * 15 < 32 MiB; 128x128: 101; 1280x720: 1 (budget)

    raft = build_raft().eval()
    sizes = []
    monkeypatch.setattr(raft, "refine", lambda f1, f2, h, c, *, iters: sizes.append(f1.shape[0])
                        or torch.zeros(f1.shape[0], 2, 128, 128))
    bidirectional_flow(raft, torch.zeros(1, 12, 3, 128, 128), iters=1, max_pairs=15)
    assert sizes == [11, 11]  # 22 pairs, at most 15 per batch: two even batches, not 15 + 7
