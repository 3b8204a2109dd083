"""Warp Error: the formula on hand-made flows, behaviour on real and synthetic clips, node errors."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
import torch

from vanish.nodes._errors import VanishError
from vanish.nodes.metrics import NODE_CLASS_MAPPINGS, VanishWarpErrorMetric
from vanish.nodes.ops import mask_ops
from vanish.nodes.ops import warp_error as we

NODE = "Warp Error (temporal consistency)"


@pytest.fixture(autouse=True)
def _comfy_folders(comfy):
    """The node writes its report image to ComfyUI's temp folder: a fake one per test."""
    return comfy


def _measure(frames, region="filled region", flow_method="dis", flow_source="result", occlusion_check=True,
             **optional):
    out = VanishWarpErrorMetric().measure(frames, region, flow_method, flow_source, occlusion_check, **optional)
    return out["result"]


def _tennis(clips_dir, count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    folder = clips_dir / "tennis"
    frames = np.stack([cv2.imread(str(folder / "frames" / f"{i:05d}.png"))[..., ::-1] for i in range(count)])
    masks = np.stack([cv2.imread(str(folder / "masks" / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(count)])
    return torch.from_numpy(frames.copy()).float() / 255.0, torch.from_numpy(masks).float() / 255.0


def _direct_formula(frames: np.ndarray, masks: np.ndarray, shifts: list[tuple[int, int]]):
    """E_warp by loops: pair t compares frame t+1 at p with frame t at p + shift_t (inside frames only)."""
    height, width = frames.shape[1:3]
    total, count, per_frame = 0.0, 0, []
    for t, (dx, dy) in enumerate(shifts):
        pair_sum, pair_count = 0.0, 0
        for y in range(height):
            for x in range(width):
                sx, sy = x + dx, y + dy
                if not (0 <= sx < width and 0 <= sy < height) or not (masks[t, y, x] and masks[t + 1, y, x]):
                    continue
                pair_sum += float(((frames[t + 1, y, x].astype(np.float64) - frames[t, sy, sx]) ** 2).sum())
                pair_count += 1
        per_frame.append(pair_sum / pair_count if pair_count else None)
        total, count = total + pair_sum, count + pair_count
    return total / count, per_frame, count


def test_equals_direct_formula_on_integer_shift_flows():
    generator = torch.Generator().manual_seed(7)
    frames = torch.rand(4, 11, 13, 3, generator=generator)
    masks = (torch.rand(4, 11, 13, generator=generator) > 0.3).float()
    shifts = [(1, 0), (0, -2), (-3, 1)]
    backward = torch.zeros(3, 11, 13, 2)
    for t, (dx, dy) in enumerate(shifts):
        backward[t, ..., 0], backward[t, ..., 1] = dx, dy
    result = we.warp_error_from_flows(frames, masks, backward)
    mean, per_frame, count = _direct_formula(frames.numpy(), masks.numpy() > 0.5, shifts)
    assert result.mean == pytest.approx(mean, rel=1e-6)
    assert result.per_frame == pytest.approx(per_frame, rel=1e-6)
    assert sum(result.pixels) == count
    # consistent forward flows (the exact inverse) drop nothing; contradicting ones drop everything
    assert we.warp_error_from_flows(frames, masks, backward, -backward).pixels == result.pixels
    contradicting = we.warp_error_from_flows(frames, masks, backward, backward)
    assert contradicting.pixels[2] == 0 and contradicting.per_frame[2] is None


def test_whole_frame_variant_and_empty_overlap():
    frames = torch.rand(3, 6, 8, 3)
    zero = torch.zeros(2, 6, 8, 2)
    whole = we.warp_error_from_flows(frames, None, zero)
    assert whole.pixels == [48, 48]
    expected = float(((frames[1:] - frames[:-1]) ** 2).sum(-1).double().mean())
    assert whole.mean == pytest.approx(expected, rel=1e-6)
    masks = torch.zeros(3, 6, 8)
    masks[0, :3] = masks[1, 3:] = masks[2, 3:] = 1.0     # frames 0 and 1 never overlap
    result = we.warp_error_from_flows(frames, masks, zero)
    assert result.per_frame[0] is None and result.pixels == [0, 24]
    assert result.mean == pytest.approx(result.per_frame[1])


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_estimate_flow_sign_convention(clips_dir, method):
    frame, _ = _tennis(clips_dir, 1)
    prev = frame[0, 40:200, 40:300]
    nxt = frame[0, 40:200, 37:297]        # content moves 3 pixels right: prev(p) = next(p + (3, 0))
    flow = we.estimate_flow(prev, nxt, method)
    assert flow.shape == (160, 260, 2) and flow.dtype == np.float32
    assert np.median(flow[20:-20, 20:-20, 0]) == pytest.approx(3.0, abs=0.3)
    assert abs(np.median(flow[20:-20, 20:-20, 1])) < 0.3


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_static_video_scores_zero(clips_dir, method):
    frame, mask = _tennis(clips_dir, 1)
    mean, per_frame, plot = _measure(frame.expand(3, -1, -1, -1), flow_method=method, mask=mask)
    # Farneback finds flows of ~1e-5 px on identical frames; 1e-6 is far below one 8-bit step (1.5e-5)
    assert mean == pytest.approx(0.0, abs=1e-6)
    assert json.loads(per_frame)["per_frame"] == pytest.approx([0.0, 0.0], abs=1e-6)


def test_fill_following_camera_is_small_and_noise_is_large(clips_dir):
    frames, masks = _tennis(clips_dir, 1)
    pan = torch.stack([frames[0, 20:220, 4 * t: 4 * t + 360] for t in range(4)])   # camera pans 4 px a frame
    region = torch.zeros(4, 200, 360)
    region[:, 60:140, 120:240] = 1.0                                                # the "filled" box
    following, _, _ = _measure(pan, mask=region)
    noisy = pan.clone()
    noise = torch.rand(4, 80, 120, 3, generator=torch.Generator().manual_seed(0))
    noisy[:, 60:140, 120:240] = noise
    noise_error, _, _ = _measure(noisy, mask=region, flow_source="original", original=pan)
    assert following < 0.005
    assert noise_error > 0.3                    # two independent uniform pixels: E = 3 * 1/6 = 0.5
    assert noise_error > 50 * following


def test_real_clip_reports_per_frame_json_and_plot(clips_dir):
    frames, masks = _tennis(clips_dir, 4)
    mean, per_frame, plot = _measure(frames, mask=mask_ops.dilate(masks, 4), seam_width=4)
    report = json.loads(per_frame)
    assert len(report["per_frame"]) == 3 and len(report["pixels"]) == 3 and len(report["seam"]) == 4
    assert report["mean"] == pytest.approx(mean) and 0.0 < mean < 0.05
    assert "0..1" in report["scale"]
    assert plot.shape[0] == 1 and plot.shape[2] == we.PLOT_WIDTH and plot.shape[3] == 3
    assert plot.dtype == torch.float32 and 0.0 <= float(plot.min()) and float(plot.max()) <= 1.0
    assert plot.shape[1] > we.PLOT_HEIGHT       # the worst pair's heat map sits below the plot


def test_seam_error_sees_a_brightness_step():
    generator = torch.Generator().manual_seed(2)
    frame = torch.rand(1, 40, 40, 3, generator=generator) * 0.1 + 0.4
    mask = torch.zeros(40, 40)
    mask[12:28, 12:28] = 1.0
    seamless = we.seam_error(frame[0], mask, 4)
    stepped = frame[0].clone()
    stepped[12:28, 12:28] += 0.3
    seam = we.seam_error(stepped, mask, 4)
    assert abs(seamless) < 0.002 and seam > 0.01
    assert we.seam_error(frame[0], torch.zeros(40, 40), 4) is None


def test_single_frame_and_odd_size(clips_dir):
    mean, per_frame, plot = _measure(torch.rand(1, 54, 97, 3), region="whole frame")
    assert mean == 0.0 and json.loads(per_frame)["per_frame"] == []
    assert plot.shape == (1, we.PLOT_HEIGHT, we.PLOT_WIDTH, 3)
    capture = cv2.VideoCapture(str(clips_dir / "running_car" / "running_car.mp4"))
    frames = [capture.read()[1][..., ::-1] for _ in range(2)]
    capture.release()
    video = torch.from_numpy(np.stack(frames).copy()).half() / 255.0               # [2, 540, 972, 3] fp16
    mean, per_frame, _ = _measure(video, region="whole frame", flow_method="farneback")
    assert 0.0 < mean < 0.05 and len(json.loads(per_frame)["per_frame"]) == 1


def test_registered_flow_method_is_used():
    calls = []

    def zero_flow(prev, nxt):
        calls.append(prev.shape)
        return np.zeros((*prev.shape, 2), np.float32)

    we.register_flow_method("test-zero", zero_flow)
    try:
        frames = torch.rand(3, 5, 6, 3)
        result = we.warp_error(frames, None, flow_method="test-zero", occlusion_check=False)
        assert calls == [(5, 6), (5, 6)]
        assert result.mean == pytest.approx(float(((frames[1:] - frames[:-1]) ** 2).sum(-1).double().mean()))
    finally:
        we.FLOW_METHODS.pop("test-zero")


@pytest.mark.parametrize("kwargs, needle", [
    (dict(), "input 'mask' is not connected, but region is 'filled region'"),
    (dict(region="whole frame", seam_width=3), "input 'mask' is not connected, but seam_width"),
    (dict(mask=torch.zeros(2, 8, 8)), "input 'mask' has 2 frames but 'frames' has 3"),
    (dict(mask=torch.zeros(1, 8, 9)), "input 'mask' is 9x8 but 'frames' is 8x8"),
    (dict(region="whole frame", flow_source="original"), "input 'original' is not connected"),
    (dict(region="whole frame", flow_source="original", original=torch.rand(3, 8, 9, 3)),
     "input 'original' is [3, 8, 9, 3] but 'frames' is [3, 8, 8, 3]"),
    (dict(region="whole frame", flow_method="raft"), "input 'flow_method' is 'raft'"),
    (dict(region="whole frame", frames=torch.rand(3, 8, 8, 4)), "input 'frames' has 4 channels (RGBA)"),
    (dict(region="whole frame", frames=torch.rand(3, 8, 8, 1)), "input 'frames' has 1 channel (greyscale)"),
    (dict(region="whole frame", frames=torch.full((3, 8, 8, 3), float("nan"))), "input 'frames' contains NaN"),
    (dict(region="whole frame", frames=torch.full((3, 8, 8, 3), 2.0)), "input 'frames' has values from 2"),
])
def test_bad_input_names_node_input_and_fix(kwargs, needle):
    frames = kwargs.pop("frames", torch.rand(3, 8, 8, 3))
    with pytest.raises(VanishError) as info:
        _measure(frames, **kwargs)
    text = str(info.value)
    assert text.startswith(NODE + ": ") and needle in text and "Fix:" in text


def test_node_registration_and_tooltips():
    assert NODE_CLASS_MAPPINGS["VanishWarpErrorMetric"] is VanishWarpErrorMetric
    assert VanishWarpErrorMetric.CATEGORY == "Vanish/metrics"
    assert "0..1" in VanishWarpErrorMetric.OUTPUT_TOOLTIPS[0]
    inputs = VanishWarpErrorMetric.INPUT_TYPES()
    assert set(inputs["required"]["flow_method"][0]) >= {"dis", "farneback"}
    for group in inputs.values():
        for name, spec in group.items():
            assert spec[1].get("tooltip"), name


# --------------------------------------------------------------------------- issue 11
@pytest.mark.parametrize("size", [(11, 11), (40, 12), (15, 200)])
def test_dis_on_frames_too_small_is_a_clear_error_not_a_crash(size):
    """DIS raised a bare cv2.error under 12 px, and at 40x12 it killed the process."""
    width, height = size
    frames = torch.rand(2, height, width, 3)
    with pytest.raises(VanishError, match=rf"^{re.escape(NODE)}: input 'frames' is too small: the dis flow "
                       rf"needs frames of at least 16x16; these are {width}x{height}\.\nFix: set flow_method "
                       r"to farneback"):
        _measure(frames, region="whole frame")
    with pytest.raises(we.FrameTooSmall):  # the ops entry point refuses too
        we.estimate_flow(frames[0], frames[1], "dis")
    mean, _, _ = _measure(frames, region="whole frame", flow_method="farneback")  # any size
    assert np.isfinite(mean)
    mean, _, _ = _measure(torch.rand(2, 16, 16, 3), region="whole frame")  # the minimum works
    assert np.isfinite(mean)


def test_is_an_output_node_that_shows_mean_and_plot(comfy):
    """ComfyUI skipped the node in three shipped workflows (no consumer, not an output node)."""
    assert VanishWarpErrorMetric.OUTPUT_NODE is True
    frames = torch.rand(3, 24, 32, 3, generator=torch.Generator().manual_seed(0))
    out = VanishWarpErrorMetric().measure(frames, "whole frame", "dis", "result", True)
    mean, per_frame, plot = out["result"]
    images = out["ui"]["images"]
    assert len(images) == 1 and images[0]["type"] == "temp"
    saved = comfy.temp / images[0]["subfolder"] / images[0]["filename"]
    shown = cv2.cvtColor(cv2.imread(str(saved)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(shown, (plot[0].numpy() * 255).round().astype(np.uint8))
    worst = json.loads(per_frame)["worst_pair"]
    assert out["ui"]["text"] == [f"E_warp mean {mean:.6g} over 2 frame pairs; worst {worst}->{worst + 1}: "
                                 f"{json.loads(per_frame)['per_frame'][worst]:.6g}"]
    single = VanishWarpErrorMetric().measure(frames[:1], "whole frame", "dis", "result", True)
    assert single["ui"]["text"] == ["E_warp: nothing measured (0 frame pairs)"]
