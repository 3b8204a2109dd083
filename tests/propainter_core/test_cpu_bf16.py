"""The opt-in bfloat16 CPU mode (``inpaint(..., cpu_bf16=True)``) and its honest fallback.

* On a CPU with native bfloat16 the networks run under ``torch.autocast("cpu", bfloat16)``: the
  fill inside the hole changes a little, every pixel outside stays the input's.
* Where it cannot run (networks on another device, a CPU without native bfloat16) exactly one
  warning line is logged and the result is the float32 one, bit for bit: never an error.

The parity-clip difference of the mode is measured in ``test_e2e_parity.py``.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import propainter_core
from propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
from propainter_core.generator import GeneratorConfig, build_generator
from propainter_core.pipeline import precision
from propainter_core.raft import build_raft

LOGGER = "propainter_core.pipeline.precision"
RAFT_ITERS = 3  # fewer refinement steps than the default 20: the same code paths, a shorter test
needs_bf16 = pytest.mark.skipif(not precision._cpu_has_bf16(), reason="this CPU has no native bfloat16")


@pytest.fixture(scope="module")
def models() -> propainter_core.ProPainterModels:
    with torch.random.fork_rng():
        torch.manual_seed(7)
        nets = [build_raft(), build_flow_completion(FlowCompletionConfig()), build_generator(GeneratorConfig())]
    for net in nets:
        net.eval().requires_grad_(False)
    return propainter_core.ProPainterModels(*nets, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = (rng.random((4, 128, 128, 3)) * 255).astype(np.uint8)
    masks = np.zeros((4, 128, 128), np.uint8)
    masks[:, 40:80, 50:90] = 1
    return frames, masks


@pytest.fixture(scope="module")
def fp32(models, clip) -> np.ndarray:
    return propainter_core.inpaint(*clip, models, raft_iter=RAFT_ITERS)


def _hole(masks: np.ndarray) -> np.ndarray:
    hole = np.zeros(masks.shape, bool)
    hole[:, 40 - 4:80 + 4, 50 - 4:90 + 4] = True  # the mask grown by the default dilation (4)
    return hole


def test_off_by_default_and_no_log(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with precision.cpu_bf16_context(torch.device("cpu"), False):
            assert not torch.is_autocast_enabled("cpu")
    assert not caplog.records


def test_another_device_falls_back_with_one_line(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with precision.cpu_bf16_context(torch.device("cuda"), True):
            assert not torch.is_autocast_enabled("cpu")
    assert len(caplog.records) == 1 and "CPU only" in caplog.records[0].getMessage()


def test_cpu_without_bf16_runs_fp32_with_one_line(models, clip, fp32, monkeypatch, caplog):
    monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = propainter_core.inpaint(*clip, models, raft_iter=RAFT_ITERS, cpu_bf16=True)
    assert len(caplog.records) == 1 and "no native bfloat16" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(out, fp32)


@needs_bf16
def test_bf16_changes_only_the_fill(models, clip, fp32, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        with precision.cpu_bf16_context(torch.device("cpu"), True):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        out = propainter_core.inpaint(*clip, models, raft_iter=RAFT_ITERS, cpu_bf16=True)
    assert not caplog.records
    hole = _hole(clip[1])
    assert out.dtype == np.uint8 and out.shape == fp32.shape
    np.testing.assert_array_equal(out[~hole], clip[0][~hole])
    assert not np.array_equal(out, fp32)  # the mode did engage
    diff = np.abs(out.astype(np.int16) - fp32.astype(np.int16))[hole]
    # random-init networks fill almost flat: measured mean 0.007 and max 1 level; the bound only
    # says "the same fill, not another picture" (the parity clip's figures: test_e2e_parity.py)
    assert diff.mean() < 1.0 and diff.max() <= 8, (diff.mean(), diff.max())
