"""The staged pipeline with tiny stand-in networks: wiring, streaming, callbacks and errors.

The stand-ins are cheap functions whose outputs depend on every frame of the chunk they get, so
any change in chunk boundaries, padding, reference choice or compositing shows up. A direct
transcription of the official script's loops (``official_like``, numpy compositing and all)
is the reference; ``run_inpaint`` must equal it bit for bit.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.ndimage
import torch
from torch import nn

import propainter_core.pipeline.stages as stages
from propainter_core.config import InpaintSettings
from propainter_core.pipeline.errors import Cancelled, InpaintInputError
from propainter_core.pipeline.precision import module_in_dtype, resolve_precision
from propainter_core.pipeline.run import run_inpaint

import propainter_core.pipeline.prepare as prepare

H, W = 40, 56  # the stand-ins allow tiny frames once the 128-pixel floor is lowered (fixture)


def stand_in_flows(raft, frames, *, iters, max_pairs=None, mapper=map):
    """Per pair only, like RAFT: depends on frames t and t+1 (and on iters)."""
    a, b = frames[:, :-1], frames[:, 1:]
    return (b - a)[:, :, :2] * 3 + 0.01 * iters, (a - b)[:, :, 1:] * 2


def stand_in_combine(flows_f, flows_b, pred_f, pred_b, masks):
    m_f, m_b = masks[:, :-1], masks[:, 1:]
    return pred_f * m_f + flows_f * (1 - m_f), pred_b * m_b + flows_b * (1 - m_b)


class StandInCompletion(nn.Module):
    def complete_bidirectional(self, flows_f, flows_b, masks, mapper=map):  # window-dependent
        return (flows_f * 0.5 + flows_f.mean(dim=1, keepdim=True) + masks[:, :-1],
                flows_b * 0.5 - flows_b.mean(dim=1, keepdim=True))


class StandInGenerator(nn.Module):
    def img_propagation(self, masked, flows, masks, interpolation, cancel=None):
        assert interpolation == "nearest"
        b, t, c, h, w = masked.shape
        assert flows[0].shape[1] == t - 1
        known = 1 - masks
        mean = (masked * known).sum(1, keepdim=True) / known.sum(1, keepdim=True).clamp(min=1)
        drift = torch.cat([flows[0][:, :1, :1], flows[0][:, :, :1]], dim=1).mean(dim=(3, 4), keepdim=True)
        prop = masked * known + (mean + 0.05 * drift).clamp(-1, 1) * masks
        remaining = masks * (prop.mean(dim=2, keepdim=True) > 0.1)
        return prop.reshape(b * t, c, h, w), remaining.reshape(b * t, 1, h, w)

    def __init__(self):
        super().__init__()
        self.encoded_frames = 0
        self.undecoded = 0

    def encode(self, frames, masks_in, masks_updated):  # per frame, like the real encoder
        self.encoded_frames += frames.shape[1]
        return torch.cat([frames, masks_in, masks_updated], dim=2) * 2

    def forward(self, frames, flows, masks_in, masks_updated, num_local, *, features=None, decode=None):
        assert flows[0].shape[1] == num_local - 1
        if features is not None:  # the pipeline's cached features are these frames' own
            assert torch.equal(features, torch.cat([frames, masks_in, masks_updated], dim=2) * 2)
        context = frames.mean(dim=1, keepdim=True)  # references matter
        out = torch.tanh(frames[:, :num_local] * 0.7 + context * 0.6 + 0.3 * masks_updated[:, :num_local]
                       - 0.2 * masks_in[:, :num_local] + 0.01 * flows[0].mean())
        if decode is not None:  # like the real generator: frames not decoded come out 0
            self.undecoded += decode.count(False)
            out = out * torch.tensor(decode, dtype=out.dtype).view(1, -1, 1, 1, 1)
        return out


@pytest.fixture
def models(monkeypatch):
    monkeypatch.setattr(prepare, "MIN_SIZE", 16)
    monkeypatch.setattr(stages, "bidirectional_flow", stand_in_flows)
    monkeypatch.setattr(stages, "combine_flows", stand_in_combine)
    return SimpleNamespace(raft=nn.Identity(), flow_completion=StandInCompletion(),
                           generator=StandInGenerator(), device=torch.device("cpu"), dtype=torch.float32)


def make_clip(num_frames: int, seed: int = 0, height: int = H, width: int = W):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height, width, 3))
    frames = np.stack([np.roll(base, 3 * t, axis=1) for t in range(num_frames)]).astype(np.uint8)
    masks = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        masks[t, 12:22, 6 + t:18 + t] = 255
    return frames, masks


def official_like(frames, masks, nets, s: InpaintSettings):
    """The official loops transcribed (inference_propainter.py:239-452), on the stand-ins."""
    T, h, w = frames.shape[:3]
    dil = np.stack([scipy.ndimage.binary_dilation(m, iterations=s.mask_dilation) for m in masks]).astype(np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None] * 2 - 1
    m = torch.from_numpy(dil).float()[None, :, None]
    clip = 12 if w <= 640 else 8
    ff, fb = [], []
    for f in range(0, T, clip):
        a, b = stand_in_flows(None, x[:, max(0, f - 1):min(T, f + clip)], iters=s.raft_iter)
        ff.append(a), fb.append(b)
    ff, fb = torch.cat(ff, 1), torch.cat(fb, 1)
    L, sub = T - 1, s.subvideo_length
    cf, cb = [], []
    for f in range(0, L, sub):
        s0, e0 = max(0, f - 5), min(L, f + sub + 5)
        p = nets.flow_completion.complete_bidirectional(ff[:, s0:e0], fb[:, s0:e0], m[:, s0:e0 + 1])
        c = stand_in_combine(ff[:, s0:e0], fb[:, s0:e0], *p, m[:, s0:e0 + 1])
        cf.append(c[0][:, f - s0:f - s0 + min(sub, L - f)]), cb.append(c[1][:, f - s0:f - s0 + min(sub, L - f)])
    cf, cb = torch.cat(cf, 1), torch.cat(cb, 1)
    masked, chunk = x * (1 - m), min(100, sub)
    uf, um = [], []
    for f in range(0, T, chunk):
        s0, e0 = max(0, f - 10), min(T, f + chunk + 10)
        p, r = nets.generator.img_propagation(masked[:, s0:e0], (cf[:, s0:e0 - 1], cb[:, s0:e0 - 1]),
                                              m[:, s0:e0], "nearest")
        u = x[:, s0:e0] * (1 - m[:, s0:e0]) + p.view(1, e0 - s0, 3, h, w) * m[:, s0:e0]
        n = min(chunk, T - f)
        uf.append(u[:, f - s0:f - s0 + n]), um.append(r.view(1, e0 - s0, 1, h, w)[:, f - s0:f - s0 + n])
    uf, um = torch.cat(uf, 1), torch.cat(um, 1)
    stride = s.neighbor_length // 2
    ref_num = sub // s.ref_stride if T > sub else -1
    comp = [None] * T
    for f in range(0, T, stride):
        nb = list(range(max(0, f - stride), min(T, f + stride + 1)))
        if ref_num == -1:
            refs = [i for i in range(0, T, s.ref_stride) if i not in nb]
        else:
            half = s.ref_stride * (ref_num // 2)
            refs = [i for i in range(max(0, f - half), min(T, f + half), s.ref_stride) if i not in nb][:ref_num + 1]
        ids = nb + refs
        out = nets.generator(uf[:, ids], (cf[:, nb[:-1]], cb[:, nb[:-1]]), m[:, ids], um[:, ids], len(nb))
        pred = ((out.view(-1, 3, h, w) + 1) / 2).permute(0, 2, 3, 1).numpy() * 255
        for i, idx in enumerate(nb):
            bm = dil[idx][..., None]
            img = pred[i].astype(np.uint8) * bm + frames[idx] * (1 - bm)
            comp[idx] = img if comp[idx] is None else (comp[idx].astype(np.float32) * 0.5 + img.astype(np.float32) * 0.5)
            comp[idx] = comp[idx].astype(np.uint8)
    return np.stack(comp)


@pytest.mark.parametrize("num_frames, options", [
    (16, {}),                                                                  # one chunk everywhere
    (23, dict(subvideo_length=8, ref_stride=4, neighbor_length=6)),            # every stage chunked
    (14, dict(subvideo_length=5, ref_stride=3, neighbor_length=4, mask_dilation=2, raft_iter=3)),
])
def test_single_segment_equals_the_official_loops(models, num_frames, options):
    frames, masks = make_clip(num_frames)
    settings = InpaintSettings(**options)
    ours = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings,
                       segment_length=num_frames)
    expected = official_like(frames, masks, models, settings)
    np.testing.assert_array_equal(ours.numpy(), expected)


def test_segments_whose_spans_cover_the_clip_equal_whole_clip(models):
    frames, masks = make_clip(16, seed=1)
    settings = InpaintSettings(subvideo_length=8, ref_stride=4, neighbor_length=6)
    whole = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings, segment_length=16)
    streamed = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings,
                           segment_length=8, segment_padding=8)
    assert torch.equal(whole, streamed)


def test_short_segments_keep_every_pixel_outside_the_mask(models):
    frames, masks = make_clip(23, seed=2)
    settings = InpaintSettings(subvideo_length=8, ref_stride=4, neighbor_length=6)
    whole = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings, segment_length=23)
    streamed = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings,
                           segment_length=6, segment_padding=3).numpy()
    hole = np.stack([scipy.ndimage.binary_dilation(m, iterations=4) for m in masks])
    np.testing.assert_array_equal(streamed[~hole], frames[~hole])
    assert not np.array_equal(streamed, whole.numpy())  # inside, the context differs


def test_segments_estimate_each_flow_pair_once_with_the_same_result(models, monkeypatch):
    """Overlapping segments reuse the previous segment's RAFT flows instead of running them again."""
    import propainter_core.pipeline.run as run_module

    frames, masks = make_clip(30, seed=4)
    settings = InpaintSettings(subvideo_length=8, neighbor_length=6)
    pairs: list[int] = []

    def counting_flows(raft, clip, *, iters, max_pairs=None, mapper=map):
        pairs.append(clip.shape[1] - 1)
        return stand_in_flows(raft, clip, iters=iters)

    monkeypatch.setattr(stages, "bidirectional_flow", counting_flows)
    calls: list[tuple[int, int]] = []
    reused = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings,
                         segment_length=6, segment_padding=3, progress=lambda done, total: calls.append((done, total)))
    assert sum(pairs) == 29  # every neighbouring pair once
    assert calls[-1][0] == calls[-1][1] == len(calls)  # the progress total counts what runs
    pairs.clear()
    monkeypatch.setattr(run_module, "_shared_pairs", lambda before, after: 0)
    fresh = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings,
                        segment_length=6, segment_padding=3)
    assert sum(pairs) > 29 * 1.5  # without reuse the overlaps run again
    assert torch.equal(reused, fresh)


def test_progress_counts_every_chunk_and_cancel_stops(models):
    frames, masks = make_clip(23)
    calls = []
    run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models,
                InpaintSettings(subvideo_length=8, neighbor_length=6), segment_length=23,
                progress=lambda done, total: calls.append((done, total)))
    # RAFT 2 clips, completion 3 sub-videos, propagation 3 chunks, generator 8 windows
    assert calls == [(i, 16) for i in range(1, 17)]
    done = []
    with pytest.raises(Cancelled, match="after 3 of 16 steps"):
        run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models,
                    InpaintSettings(subvideo_length=8, neighbor_length=6), segment_length=23,
                    progress=lambda step, total: done.append(step), should_cancel=lambda: len(done) >= 3)


def test_one_mask_for_every_frame_and_numpy_types(models, monkeypatch):
    from propainter_core.pipeline import api

    monkeypatch.setattr(api, "ProPainterModels", SimpleNamespace, raising=False)
    frames, masks = make_clip(6)
    single = api.inpaint(frames, masks[2], models)
    repeated = api.inpaint(frames, np.repeat(masks[2:3], 6, axis=0), models)
    assert isinstance(single, np.ndarray) and single.dtype == np.uint8 and single.shape == frames.shape
    np.testing.assert_array_equal(single, repeated)
    as_tensor = api.inpaint(torch.from_numpy(frames), torch.from_numpy(masks[2:3] > 0), models)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_array_equal(as_tensor.numpy(), single)


def test_sizes_round_down_to_multiples_of_8_and_masks_are_resized(models):
    frames, masks = make_clip(4, height=45, width=63)
    out = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks[:, ::2, ::2].copy()), models)
    assert out.shape == (4, 40, 56, 3)
    assert out.dtype == torch.uint8


@pytest.mark.parametrize("frames, masks, settings, match", [
    (np.zeros((1, H, W, 3), np.uint8), np.zeros((1, H, W)), {}, "at least 2 frames"),
    (np.zeros((3, H, W, 3), np.float32), np.zeros((3, H, W)), {}, "uint8"),
    (np.zeros((3, H, W, 3), np.uint8), np.zeros((2, H, W)), {}, r"T = 3 \(or 1"),
    (np.zeros((3, 120, 200, 3), np.uint8), np.zeros((3, 120, 200)), {}, "at least 128x128"),
    (np.zeros((3, 128, 160, 3), np.uint8), np.zeros((3, 128, 160)), {"resize_ratio": 0.5}, "would be 80x64"),
    (np.zeros((3, H, W, 3), np.uint8), np.zeros((3, H, W)), {"width": 200}, "both height and width"),
    (np.zeros((3, H, W, 3), np.uint8), np.zeros((3, H, W)), {"fp16": True}, "fp16=True needs a CUDA"),
    (np.zeros((3, H, W, 3), np.uint8), np.zeros((3, H, W)), {"neighbor_length": 1}, "neighbor_length"),
    (np.zeros((3, H, W, 3), np.uint8), [[0]], {}, "numpy array or a torch tensor"),
])
def test_input_errors_are_clear(models, monkeypatch, frames, masks, settings, match):
    from propainter_core.pipeline.api import inpaint

    monkeypatch.setattr(prepare, "MIN_SIZE", 128)  # the real floor
    with pytest.raises(InpaintInputError, match=match):
        inpaint(frames, masks, models, **settings)


def test_precision_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision(cpu, torch.float32, False).network == torch.float32
    assert resolve_precision(cuda, torch.float32, True).network == torch.float16
    assert resolve_precision(cuda, torch.bfloat16, True).network == torch.bfloat16
    assert resolve_precision(cuda, torch.float16, False).flow == torch.float32
    with pytest.raises(InpaintInputError, match="needs a CUDA device"):
        resolve_precision(cpu, torch.float16, False)
    with pytest.raises(InpaintInputError, match="not supported"):
        resolve_precision(cuda, torch.float64, False)


def test_dtype_conversion_copies_and_never_touches_the_callers_module():
    layer = nn.Linear(2, 2)
    assert module_in_dtype(layer, torch.float32) is layer
    half = module_in_dtype(layer, torch.float16)
    assert half is not layer and half.weight.dtype == torch.float16 and layer.weight.dtype == torch.float32


def test_load_models_refuses_half_on_cpu_before_reading_files(tmp_path):
    import propainter_core

    missing = tmp_path / "missing.pth"
    with pytest.raises(InpaintInputError, match="needs a CUDA device"):
        propainter_core.load_models(raft=missing, flow_completion=missing, generator=missing,
                                    dtype=torch.float16)


def test_load_models_names_a_missing_file(tmp_path):
    import propainter_core
    from propainter_core.checkpoints import CheckpointError

    missing = tmp_path / "raft-things.pth"
    with pytest.raises(CheckpointError, match="raft-things.pth"):
        propainter_core.load_models(raft=missing, flow_completion=missing, generator=missing)


def test_settings_defaults_are_the_official_ones_and_sizes_round_down():
    s = InpaintSettings()
    assert (s.mask_dilation, s.ref_stride, s.neighbor_length, s.subvideo_length, s.raft_iter,
            s.resize_ratio, s.height, s.width, s.fp16) == (4, 10, 10, 80, 20, 1.0, -1, -1, False)
    assert s.processing_size(240, 432) == (240, 432)
    assert s.processing_size(540, 972) == (536, 968)  # running_car: neither side a multiple of 8
    assert InpaintSettings(resize_ratio=0.5).processing_size(540, 972) == (264, 480)  # int(270)->264
    assert InpaintSettings(height=300, width=500, resize_ratio=0.5).processing_size(1, 1) == (144, 248)
    assert InpaintSettings(ref_stride=np.int64(3)).ref_stride == 3
    with pytest.raises(ValueError, match="ref_stride must be an integer >= 1, got 0"):
        InpaintSettings(ref_stride=0)
    with pytest.raises(ValueError, match="resize_ratio must be > 0"):
        InpaintSettings(resize_ratio=0.0)


def test_generator_encodes_each_frame_once_and_skips_windows_without_hole(models, monkeypatch):
    """16 frames, windows of 11 local frames every 5 (+ references): the official loops encode
    41 frames; the pipeline encodes each used frame once. A window whose local frames hold no
    hole never reaches the generator, and the result still equals the official loops."""
    frames, masks = make_clip(16)
    masks[:6] = 0  # the first window (frames 0-5) has no hole
    settings = InpaintSettings()
    calls = []
    forward = models.generator.forward
    monkeypatch.setattr(models.generator, "forward", lambda *a, **k: calls.append(a[4]) or forward(*a, **k))
    ours = run_inpaint(torch.from_numpy(frames), torch.from_numpy(masks), models, settings, segment_length=16)
    assert models.generator.encoded_frames == 16  # frames 1..15 (windows 2-4) plus reference 0
    assert calls == [11, 11, 6]  # windows at f = 5, 10, 15; the one at f = 0 is skipped
    assert models.generator.undecoded == 7  # frames 0-5 (window f = 5) and 5 (window f = 10) have no hole
    monkeypatch.setattr(models.generator, "forward", forward)
    np.testing.assert_array_equal(ours.numpy(), official_like(frames, masks, models, settings))
