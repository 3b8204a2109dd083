"""Issue 11: SAM 2 caps the number of objects, a Propagate run waiting for the model honours a
cancel, and the live preview yields to runs without touching the run's interrupt flag."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from cancel_timing import CANCEL_BOUND_S, CancelTimer
from sam2_testing import FakePredictor, fake_handle, handle_for, tiny_predictor
from vanish.nodes import NODE_CLASS_MAPPINGS, _comfy
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import sam2_session
from vanish.nodes.ops.sam2_prompts import FramePrompts, PromptSet


def prompts(count: int) -> PromptSet:
    return PromptSet.from_json({"objects": [{"id": i + 1, "frames": {"0": {"positive": [[i % 8, 3]]}}}
                                            for i in range(count)]})


def frames(t: int = 3) -> torch.Tensor:
    return torch.rand(t, 6, 80, 3, generator=torch.Generator().manual_seed(1))  # object k is column k


def propagate(count: int = 1, t: int = 3):
    return NODE_CLASS_MAPPINGS["VanishSAM2Propagate"]().propagate(fake_handle(FakePredictor()), frames(t),
                                                                 prompts(count))


def test_too_many_objects_is_refused_before_tracking(comfy):
    limit = sam2_session.MAX_OBJECTS
    with pytest.raises(VanishError, match=rf"^SAM 2 Propagate: input 'prompts' has {limit + 1} objects; at most "
                                          rf"{limit} are tracked in one run"):
        propagate(limit + 1)


def test_many_objects_warn_with_the_cost(comfy, caplog):
    count = sam2_session.MANY_OBJECTS + 1
    with caplog.at_level("WARNING"):
        mask, _, _ = propagate(count)
    assert mask.shape == (3, 6, 80)
    assert f"{count} objects: SAM 2 keeps a memory per object, so this run takes about {count} times" in caplog.text


def test_waiting_for_a_busy_model_honours_cancel(comfy):
    """Before issue 11 Propagate waited on the model lock with no timeout and no cancel."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a long preview (released after 8 s at the latest, so nothing hangs)
        with sam2_session._model_lock:
            held.set()
            release.wait(8.0)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(5.0)
    timer = CancelTimer(delay=0.3, request=_comfy.request_cancel)
    timer.arm()
    try:
        with pytest.raises(_comfy.Interrupted):
            propagate()
        latency = timer.latency()
    finally:
        timer.cancel()
        release.set()
        holder.join()
    assert latency < CANCEL_BOUND_S, f"stopped {latency:.2f} s after the cancel request"


def test_waiting_too_long_is_a_clear_error(comfy, monkeypatch):
    monkeypatch.setattr(sam2_session, "RUN_LOCK_TIMEOUT_S", 0.3)
    with sam2_session._model_lock:
        with pytest.raises(VanishError, match=r"^SAM 2 Propagate: the SAM 2 model stayed busy for 0 s"):
            done = []
            thread = threading.Thread(target=lambda: done.append(_run_propagate_catching()))
            thread.start()
            thread.join(10.0)
            raise done[0]


def _run_propagate_catching():
    try:
        propagate()
    except VanishError as exc:
        return exc
    return AssertionError("propagate did not fail")


def _preview(handle, count: int = 1) -> np.ndarray:
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    parts = [FramePrompts(positive=[(8.0 + i % 16, 12.0)]) for i in range(count)]
    return sam2_session.preview_single_frame(handle, image, parts, timeout_s=1.0)


def test_preview_never_consumes_the_runs_interrupt(comfy):
    """A preview runs beside a prompt: ComfyUI's interrupt check clears the flag it reads, so a
    preview that checked it would swallow the user's Cancel of the running prompt."""
    handle = handle_for(tiny_predictor())
    _comfy.request_cancel(True)
    masks = _preview(handle)
    assert masks.shape == (1, 32, 32)
    assert _comfy.is_interrupted()


def test_preview_yields_to_a_waiting_run(comfy):
    predictor = tiny_predictor()
    handle = handle_for(predictor)
    # a run starts waiting while the preview is inside the image encoder
    hook = predictor.image_encoder.register_forward_pre_hook(lambda *a: sam2_session._run_waiting.set())
    try:
        with pytest.raises(TimeoutError):
            _preview(handle)
    finally:
        hook.remove()
        sam2_session._run_waiting.clear()
    assert sam2_session._model_lock.acquire(blocking=False)  # the preview let go of the model
    sam2_session._model_lock.release()
    sam2_session._run_waiting.set()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _preview(handle)  # a run is waiting: the preview does not even queue for the model
        assert time.monotonic() - started < 0.5
    finally:
        sam2_session._run_waiting.clear()


def test_preview_refuses_too_many_objects():
    with pytest.raises(sam2_session.TooManyObjects, match="at most"):
        _preview(object(), sam2_session.MAX_OBJECTS + 1)


def test_propagate_with_the_real_model_stops_within_the_bound(comfy):
    from sam2_testing import moving_square_clip

    clip = moving_square_clip(40, 64, 64)
    ps = PromptSet.from_json({"objects": [{"id": 1, "frames": {"0": {"positive": [[20, 20]]}}}]})
    handle = handle_for(tiny_predictor())
    timer = CancelTimer(delay=0.5, request=_comfy.request_cancel)
    timer.arm()
    try:
        with pytest.raises(_comfy.Interrupted):
            NODE_CLASS_MAPPINGS["VanishSAM2Propagate"]().propagate(handle, clip, ps)
        latency = timer.latency()
    finally:
        timer.cancel()
    assert latency < CANCEL_BOUND_S, f"stopped {latency:.2f} s after the cancel request"
