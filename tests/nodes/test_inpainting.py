"""ProPainter Model Loader / ProPainter Inpaint nodes and the inpaint runner (no real weights)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import vanish.propainter_core as core
from vanish.nodes import inpainting
from vanish.nodes._errors import VanishError
from vanish.nodes.compositing import VanishCompositeFrames
from vanish.nodes.ops import inpaint_runner
from vanish.nodes.ops.inpaint_runner import (MIN_SEGMENT, CropBox, Host, InpaintMemoryError, RunSettings,
                                             choose_segment, crop_box, estimate_bytes, is_out_of_memory,
                                             processing_size)

NODE = inpainting.VanishProPainterInpaint()
DEFAULTS = dict(mask_dilation=4, flow_mask_dilation=-1, neighbor_length=10, ref_stride=10, subvideo_length=80,
                raft_iter=20, size_mode="scale", scale=1.0, long_side=960, crop="off", crop_margin=64,
                segment_length=0)
FLOW_FILL = inpainting.InpaintModel("flow_fill", torch.device("cpu"))


def clip(t: int = 5, h: int = 45, w: int = 70) -> tuple[torch.Tensor, torch.Tensor]:
    """A panning gradient texture with a moving square object; IMAGE and MASK."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w + 3 * t), indexing="ij")
    canvas = torch.stack([(torch.sin(xs / 3.0) + 1) / 2, (torch.cos(ys / 4.0) + 1) / 2,
                          ((xs + ys) % 17) / 17.0], -1)  # [H, W', 3]
    frames = torch.stack([canvas[:, 3 * i:3 * i + w] for i in range(t)]).float()
    masks = torch.zeros((t, h, w))
    for i in range(t):
        masks[i, 15:27, 10 + 4 * i:22 + 4 * i] = 1.0
    frames[masks > 0] = torch.tensor([1.0, 0.0, 1.0])
    return frames, masks


def run_node(frames, masks, model=FLOW_FILL, **overrides):
    return NODE.inpaint(frames, masks, model, **{**DEFAULTS, **overrides})


# --------------------------------------------------------------------------- runner geometry
@pytest.mark.parametrize("backend,size,settings,expected", [
    ("propainter", (128, 224), {}, (128, 224)),
    ("propainter", (540, 972), {}, (544, 976)),                     # nearest multiple of 8
    ("propainter", (1080, 1920), {"size_mode": "long side", "long_side": 640}, (360, 640)),
    ("propainter", (60, 100), {}, (128, 216)),                      # scaled up to 128, aspect kept
    ("flow_fill", (45, 70), {"scale": 0.5}, (22, 35)),
    ("flow_fill", (45, 70), {"scale": 0.1}, (16, 25)),              # at least 16
])
def test_processing_size(backend, size, settings, expected):
    assert processing_size(*size, RunSettings(backend=backend, **settings)) == expected


def test_crop_box_covers_the_mask_over_time_plus_margin():
    masks = torch.zeros((3, 100, 200), dtype=torch.bool)
    masks[0, 40:50, 60:70] = True
    masks[2, 45:55, 90:100] = True
    assert crop_box(masks, "auto", 10, 16) == CropBox(50, 30, 60, 35)
    assert crop_box(masks, "auto", 10, 64) == CropBox(48, 16, 64, 64)     # grown to the minimum side
    assert crop_box(masks, "off", 10, 16) == CropBox(0, 0, 200, 100)
    assert crop_box(masks, "auto", 80, 16) == CropBox(0, 0, 200, 100)     # too big: whole frame


def test_segment_choice_follows_free_memory():
    size = (240, 432)
    assert choose_segment(size, 10**12, 80, 300, 10) == 80
    assert choose_segment(size, 10**12, 80, 30, 10) == 30
    assert choose_segment(size, 1, 80, 300, 10) == MIN_SEGMENT
    small = choose_segment(size, estimate_bytes(size, 40) / inpaint_runner.MEMORY_HEADROOM, 80, 300, 10)
    assert small == 20  # 80 -> 40 -> 20: the first whose padded span (40 frames) fits
    assert estimate_bytes(size, 80, half=True) < estimate_bytes(size, 80)


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_out_of_memory_retries_smaller_then_explains(monkeypatch):
    seen: list[int] = []

    def fake_inpaint(frames, masks, models, *, segment_length, height, width, **_):
        seen.append(segment_length)
        if segment_length > 10:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return torch.zeros((frames.shape[0], 128, 128, 3), dtype=torch.uint8)

    monkeypatch.setattr(core, "inpaint", fake_inpaint)
    frames = torch.rand(40, 128, 128, 3)
    masks = torch.zeros(40, 128, 128, dtype=torch.bool)
    masks[:, 50:60, 50:60] = True
    freed: list[bool] = []
    host = Host(free_memory=lambda: 10**12, empty_cache=lambda: freed.append(True))
    result = inpaint_runner.run_inpaint(frames, masks, RunSettings(segment_length=40), None, host)
    assert seen == [40, 20, 10] and len(freed) == 2 and result.segment_length == 10
    assert any("retried" in note for note in result.notes)

    monkeypatch.setattr(core, "inpaint", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("oom")))
    with pytest.raises(InpaintMemoryError, match=r"would fit: set size_mode to 'long side' with long_side \d+"):
        inpaint_runner.run_inpaint(frames, masks, RunSettings(segment_length=40), None,
                                   Host(free_memory=lambda: 2 * 1024**3))


# --------------------------------------------------------------------------- the inpaint node
def test_empty_mask_returns_the_frames_unchanged():
    frames, masks = clip()
    filled, used, crop = run_node(frames, torch.zeros_like(masks))
    assert filled is frames and not used.any()
    assert crop == {"x": 0, "y": 0, "width": 70, "height": 45}


def test_fill_keeps_every_pixel_outside_the_used_mask():
    frames, masks = clip()  # 70x45: not a multiple of 8
    filled, used, crop = run_node(frames, masks)
    assert filled.shape == frames.shape and used.shape == masks.shape
    outside = used == 0
    assert torch.equal(filled[outside], frames[outside])
    assert bool((used[masks > 0] == 1).all())  # the object is inside the used (dilated) mask
    magenta = torch.tensor([1.0, 0.0, 1.0])
    assert (filled[masks > 0] - magenta).abs().sum(-1).min() > 0.2


def test_single_frame():
    frames, masks = clip(t=1)
    filled, used, _ = run_node(frames, masks)
    assert filled.shape == frames.shape and bool(used.any())


def test_all_masked_warns_and_fills(caplog):
    frames, _ = clip(t=2)
    with caplog.at_level("WARNING"):
        filled, used, _ = run_node(frames, torch.ones(2, 45, 70))
    assert "nothing to propagate" in caplog.text
    assert torch.allclose(filled, torch.full_like(filled, 128 / 255))


@pytest.mark.parametrize("bad_mask,text", [
    (torch.zeros(3, 45, 70), "has 3 frames but 'images' has 5"),
    (torch.zeros(5, 40, 70), "is 70x40 but 'images' is 70x45"),
])
def test_mask_that_does_not_match_the_frames(bad_mask, text):
    frames, _ = clip()
    with pytest.raises(VanishError, match=text):
        run_node(frames, bad_mask)


def test_wrong_model_input():
    frames, masks = clip()
    with pytest.raises(VanishError, match="ProPainter Model Loader"):
        run_node(frames, masks, model="not a model")


def test_crop_and_stitch_leaves_the_rest_bit_identical():
    frames, masks = clip(t=4, h=120, w=160)
    filled, used, crop = run_node(frames, masks, crop="auto", crop_margin=8)
    assert crop["width"] < 160 and crop["height"] < 120
    assert filled.shape == (4, crop["height"], crop["width"], 3)
    (final,) = VanishCompositeFrames().composite(frames, filled, used, False, 16, crop)
    assert torch.equal(final[used == 0], frames[used == 0])
    assert not torch.equal(final[masks > 0], frames[masks > 0])


def test_streaming_through_the_node_equals_the_whole_clip():
    frames, masks = clip(t=6)
    whole, _, _ = run_node(frames, masks)
    streamed, _, _ = run_node(frames, masks, segment_length=2)
    assert torch.equal(whole, streamed)


# --------------------------------------------------------------------------- the loader
def test_missing_files_error_names_each_file_folder_and_release(comfy):
    with pytest.raises(VanishError) as info:
        inpainting.VanishProPainterModelLoader().load("propainter", "raft-things.pth",
                                                      "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "cpu")
    text = str(info.value)
    for name in ("raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth",
                 str(comfy.models("propainter")), "github.com/sczhou/ProPainter/releases/tag/v0.1.0"):
        assert name in text


def test_wrong_file_is_a_clear_error(comfy):
    folder = comfy.models("propainter")
    for name in inpainting.OFFICIAL_FILES.values():
        torch.save({"not.a.network": torch.zeros(2)}, folder / name)
    with pytest.raises(VanishError, match="could not be used"):
        inpainting.VanishProPainterModelLoader().load("propainter", "raft-things.pth",
                                                      "recurrent_flow_completion.pth", "ProPainter.pth", "fp32", "cpu")


def test_flow_fill_backend_needs_no_files(comfy):
    (model,) = inpainting.VanishProPainterModelLoader().load("flow_fill (no weights)", "raft-things.pth",
                                                             "x.pth", "y.pth", "fp16", "auto")
    assert model.backend == "flow_fill"


def test_the_fast_flow_fill_choice_fills_once_through_the_node(comfy):
    # "flow_fill fast" is the weights-free backend without its second draw: the node's fill is the
    # backend's one-draw fill, and the default choice's is not (it is the mean of two).
    from vanish.nodes.ops import flow_fill

    loader = inpainting.VanishProPainterModelLoader()
    (fast,) = loader.load("flow_fill fast (no weights, one fill)", inpainting.NO_FILE, inpainting.NO_FILE,
                          inpainting.NO_FILE, "fp32", "auto")
    (both,) = loader.load("flow_fill (no weights)", "raft-things.pth", "x.pth", "y.pth", "fp32", "auto")
    assert fast.backend == both.backend == "flow_fill"
    frames, masks = clip(t=6)
    given = (frames.numpy() * 255).round().astype(np.uint8)
    one = flow_fill.flow_fill_inpaint(given, masks.numpy() > 0, flow_fill.FlowFillSettings(second_draw=False))
    filled_fast, used, _ = run_node(frames, masks, fast)
    filled_both, _, _ = run_node(frames, masks, both)
    inside = used.numpy() > 0
    fast_levels = (filled_fast.numpy() * 255).round()
    np.testing.assert_array_equal(fast_levels[inside], one[inside])
    assert np.abs((filled_both.numpy() * 255).round() - one)[inside].max() >= 2


def test_loader_lists_only_files_that_exist(comfy):
    # The frontend reports a model as missing (and offers its download) only when the widget's
    # value is not among the choices, so an empty folder must not list the official names.
    loader = inpainting.VanishProPainterModelLoader
    inputs = loader.INPUT_TYPES()["required"]
    for net in ("raft", "flow_completion", "generator"):
        assert inputs[net][0] == [inpainting.NO_FILE]
        assert inputs[net][1]["default"] == inpainting.OFFICIAL_FILES[net]
    (comfy.models("propainter") / "raft-things.pth").write_bytes(b"x")
    assert loader.INPUT_TYPES()["required"]["raft"][0] == ["raft-things.pth", inpainting.NO_FILE]
    # The slots are exempt from ComfyUI's list check, so graphs saved with official names still run
    # flow_fill on an empty folder; the loader says what is missing when it runs.
    assert loader.VALIDATE_INPUTS("ProPainter.pth", "x.pth", "y.pth") is True


def test_no_file_choice_needs_the_flow_fill_backend(comfy):
    no_file = inpainting.NO_FILE
    (model,) = inpainting.VanishProPainterModelLoader().load(no_file, no_file, no_file, no_file, "fp32", "cpu")
    assert model.backend == "flow_fill"
    with pytest.raises(VanishError, match=r"input 'raft' is 'flow_fill \(no weights\)'(.|\n)*Fix: choose the raft"):
        inpainting.VanishProPainterModelLoader().load("propainter", no_file, "x.pth", "y.pth", "fp32", "cpu")


def test_fp16_on_cpu_falls_back_to_fp32_and_models_are_cached(comfy, parity_checkpoints, caplog):
    folder = comfy.models("propainter")
    for path in parity_checkpoints.values():
        (folder / path.name).write_bytes(path.read_bytes())
    loader = inpainting.VanishProPainterModelLoader()
    with caplog.at_level("WARNING"):
        (first,) = loader.load("propainter", "raft-things.pth", "recurrent_flow_completion.pth",
                               "ProPainter.pth", "fp16", "cpu")
    assert first.dtype == torch.float32 and "needs a CUDA GPU" in caplog.text
    (second,) = loader.load("propainter", "raft-things.pth", "recurrent_flow_completion.pth",
                            "ProPainter.pth", "fp16", "cpu")
    assert second is first
    networks = first.networks()
    assert networks.generator.training is False and networks.device.type == "cpu"


@pytest.fixture(scope="module")
def random_propainter() -> inpainting.InpaintModel:
    """ProPainter with random weights (wiring tests only; the parity test checks the values)."""
    from vanish.nodes import _comfy
    from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
    from vanish.propainter_core.generator import GeneratorConfig, build_generator
    from vanish.propainter_core.raft import RaftConfig, build_raft

    torch.manual_seed(0)
    bundle = inpainting._Networks(build_raft(RaftConfig()).eval(), build_flow_completion(FlowCompletionConfig()).eval(),
                                  build_generator(GeneratorConfig()).eval())
    cpu = torch.device("cpu")
    return inpainting.InpaintModel("propainter", cpu, torch.float32, _comfy.ManagedModel(bundle, cpu))


def test_propainter_single_frame_at_a_size_not_divisible_by_8(random_propainter):
    frames = torch.rand(1, 130, 140, 3)
    masks = torch.zeros(1, 130, 140)
    masks[0, 50:70, 60:90] = 1.0
    filled, used, crop = run_node(frames, masks, model=random_propainter, raft_iter=1)
    assert filled.shape == frames.shape and crop == {"x": 0, "y": 0, "width": 140, "height": 130}
    assert torch.equal(filled[used == 0], frames[used == 0])
    assert bool(used[masks > 0].all()) and not torch.equal(filled[masks > 0], frames[masks > 0])


def test_cancel_stops_the_node(comfy):
    from vanish.nodes import _comfy

    frames, masks = clip()
    _comfy.request_cancel(True)
    with pytest.raises(_comfy.Interrupted):
        run_node(frames, masks)


# --------------------------------------------------------------------------- issue 11: refuse, cancel
def _huge_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 5000x5000 frames with no memory behind them, and a small object's masks."""
    frames = torch.zeros(1, 1, 1, 3).expand(2, 5000, 5000, 3)
    masks = torch.zeros(1, 1, 1, dtype=torch.bool).expand(2, 5000, 5000).clone()
    masks[:, 100:200, 100:200] = True
    return frames, masks


def test_a_frame_that_cannot_fit_is_refused_before_anything_runs(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(core, "inpaint", lambda *a, **k: calls.append(1))
    frames, masks = _huge_clip()
    host = Host(free_memory=lambda: 16 * 1024**3)
    with pytest.raises(InpaintMemoryError) as caught:
        inpaint_runner.run_inpaint(frames, masks, RunSettings(), None, host)
    text = str(caught.value)
    assert calls == []  # refused up front: the core never ran
    assert "ProPainter at 5000x5000 would need about" in text and "refused before starting" in text
    assert "16.0 GiB are free" in text
    fits = int(text.split("long_side ")[1].split(" ")[0])
    assert 128 <= fits < 5000
    need = inpaint_runner.estimate_bytes(processing_size(5000, 5000, RunSettings(size_mode="long side", long_side=fits)), 28)
    assert need <= 16 * 1024**3  # the suggested size does fit


def test_node_refuses_a_huge_frame_with_a_clear_error(random_propainter, monkeypatch):
    from vanish.nodes import _comfy

    monkeypatch.setattr(_comfy, "free_memory", lambda device: 8 * 1024**3)
    frames = torch.zeros(1, 1, 1, 3).expand(2, 5000, 5000, 3)
    masks = torch.zeros(2, 5000, 5000)
    masks[:, 10:20, 10:20] = 1.0
    with pytest.raises(VanishError, match=r"ProPainter Inpaint: ProPainter at 5000x5000 would need about [\d.]+ GiB"):
        run_node(frames, masks, model=random_propainter)


def test_propainter_node_stops_within_the_bound_mid_raft(comfy, random_propainter):
    """Before issue 11 the node polled only between chunks: a short clip's RAFT ran to its end."""
    from cancel_timing import CANCEL_BOUND_S, CancelTimer
    from vanish.nodes import _comfy

    frames, masks = torch.rand(5, 128, 128, 3), torch.zeros(5, 128, 128)
    masks[:, 40:80, 40:80] = 1.0
    timer = CancelTimer(delay=0.3, request=_comfy.request_cancel)
    bundle = random_propainter.managed.module
    handle = bundle.raft.update_block.encoder.register_forward_pre_hook(timer.arm)  # fast and official steps
    try:
        with pytest.raises(_comfy.Interrupted):
            run_node(frames, masks, model=random_propainter, raft_iter=20)
        latency = timer.latency()
    finally:
        handle.remove()
        timer.cancel()
    assert latency < CANCEL_BOUND_S, f"stopped {latency:.2f} s after the cancel request"


def test_bf16_on_cpu_is_the_bfloat16_autocast_mode(comfy, parity_checkpoints, caplog, random_propainter):
    """The loader's bf16 on the CPU keeps fp32 weights and asks the core for bfloat16 autocast."""
    from dataclasses import replace

    from vanish.propainter_core.pipeline.precision import _cpu_has_bf16

    folder = comfy.models("propainter")
    for path in parity_checkpoints.values():
        (folder / path.name).write_bytes(path.read_bytes())
    with caplog.at_level("WARNING"):
        (loaded,) = inpainting.VanishProPainterModelLoader().load(
            "propainter", "raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth", "bf16", "cpu")
    assert loaded.dtype == torch.float32 and loaded.cpu_bf16 and "needs a CUDA GPU" not in caplog.text

    torch.manual_seed(1)
    frames = torch.rand(3, 128, 136, 3)
    masks = torch.zeros(3, 128, 136)
    masks[:, 40:80, 50:90] = 1.0
    fp32, used, _ = run_node(frames, masks, model=random_propainter, raft_iter=2)
    caplog.clear()
    with caplog.at_level("WARNING"):
        bf16, used_bf16, _ = run_node(frames, masks, model=replace(random_propainter, cpu_bf16=True), raft_iter=2)
    assert torch.equal(used, used_bf16) and torch.equal(bf16[used == 0], frames[used == 0])
    if _cpu_has_bf16():  # this machine: AVX512-BF16
        assert not torch.equal(bf16, fp32) and "cpu_bf16" not in caplog.text
    else:  # one warning line, and the fp32 result
        assert torch.equal(bf16, fp32) and "no native bfloat16" in caplog.text


# --------------------------------------------------------------------------- flow_fill's memory
def test_flow_fill_shortens_its_segments_to_fit_the_free_memory_and_refuses_what_cannot():
    from vanish.nodes.ops import flow_fill

    requested = inpaint_runner.flow_fill_settings(RunSettings(backend="flow_fill"))
    size, frames = (1080, 1920), 120
    ample = inpaint_runner.plan_flow_fill(size, frames, 64 * 1024**3, requested)
    assert ample == requested
    tight = inpaint_runner.plan_flow_fill(size, frames, 20 * 1024**3, requested)
    assert MIN_SEGMENT <= tight.segment_length < requested.segment_length
    assert tight.max_propagation == requested.max_propagation  # the context a pixel looks into stays
    assert flow_fill.working_bytes(*size, frames, tight) <= 20 * 1024**3 * inpaint_runner.MEMORY_HEADROOM
    with pytest.raises(InpaintMemoryError) as caught:
        inpaint_runner.plan_flow_fill(size, frames, 8 * 1024**3, requested)
    text = str(caught.value)
    assert "flow_fill (no weights) at 1920x1080 would need about" in text and "8.0 GiB are free" in text
    fits = int(text.split("long_side ")[1].split(" ")[0])
    assert 16 <= fits < 1920
    smaller = processing_size(1080, 1920, RunSettings(backend="flow_fill", size_mode="long side", long_side=fits))
    inpaint_runner.plan_flow_fill(smaller, frames, 8 * 1024**3, requested)  # the suggested size fits


def test_flow_fill_on_a_frame_that_cannot_fit_is_refused_before_anything_runs(monkeypatch):
    from vanish.nodes.ops import flow_fill

    calls: list[int] = []
    monkeypatch.setattr(flow_fill, "flow_fill_inpaint", lambda *a, **k: calls.append(1))
    frames, masks = _huge_clip()
    with pytest.raises(InpaintMemoryError, match=r"flow_fill \(no weights\) at 5000x5000 would need about"):
        inpaint_runner.run_inpaint(frames, masks, RunSettings(backend="flow_fill"), None,
                                   Host(free_memory=lambda: 2 * 1024**3))
    assert calls == []


def test_flow_fill_says_when_it_streams_in_shorter_segments(monkeypatch):
    from vanish.nodes.ops import flow_fill

    seen = []

    def spy(frames, masks, settings, **kwargs):
        seen.append(settings)
        return frames.copy()

    monkeypatch.setattr(flow_fill, "flow_fill_inpaint", spy)
    frames = torch.rand(100, 24, 32, 3)
    masks = torch.zeros(100, 24, 32, dtype=torch.bool)
    masks[:, 8:16, 10:20] = True
    settings = RunSettings(backend="flow_fill", segment_length=40)
    requested = inpaint_runner.flow_fill_settings(settings)
    # A window of 40 + 2 x 30 frames (the whole clip) does not fit; one of 20 + 2 x 30 does.
    fits_20 = inpaint_runner.flow_fill_bytes((24, 32), 100, replace(requested, segment_length=20))
    assert fits_20 < inpaint_runner.flow_fill_bytes((24, 32), 100, requested)
    free = int(fits_20 / inpaint_runner.MEMORY_HEADROOM) + 1
    result = inpaint_runner.run_inpaint(frames, masks, settings, None, Host(free_memory=lambda: free))
    assert seen[0].segment_length == 20 and result.segment_length == 20
    assert any("segments of 20 frames (instead of 40) to fit the free memory" in note for note in result.notes)
    result = inpaint_runner.run_inpaint(frames, masks, settings, None, Host(free_memory=lambda: 64 * 1024**3))
    assert seen[1].segment_length == 40 and not result.notes


def test_frames_are_converted_to_uint8_a_few_at_a_time_with_the_same_values():
    # One expression over the clip made two float32 temporaries of the whole clip (24 bytes a pixel a frame).
    rng = np.random.default_rng(4)
    images = torch.from_numpy(rng.uniform(-0.2, 1.2, (inpaint_runner._CONVERT_FRAMES * 2 + 3, 9, 11, 3))).float()
    images[0, 0, 0] = torch.tensor([0.5 / 255, 1.5 / 255, 254.5 / 255])  # halves round as before
    expected = (images.clamp(0, 1) * 255.0).round().to(torch.uint8)
    assert torch.equal(inpaint_runner.to_uint8(images), expected)
    as_bytes = expected.clone()
    assert inpaint_runner.to_uint8(as_bytes) is as_bytes  # decoded frames are taken as they are


def test_freed_memory_is_handed_back_before_the_clip_output_is_built(monkeypatch):
    events = []
    restore = inpaint_runner._restore
    monkeypatch.setattr(inpaint_runner, "return_freed_memory", lambda: events.append("trim"))
    monkeypatch.setattr(inpaint_runner, "_restore", lambda restorer: events.append("restore") or restore(restorer))
    frames, masks = clip()
    result = inpaint_runner.run_inpaint(frames, masks > 0, RunSettings(backend="flow_fill"))
    assert events == ["trim", "restore"]
    assert result.mask_used.shape == masks.shape
    events.clear()
    inpaint_runner.run_inpaint(frames, masks > 0, RunSettings(backend="flow_fill"), lazy=True)
    assert events == []  # a streamed segment's window is reused by the next segment's: nothing to hand back
