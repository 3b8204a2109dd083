"""The streaming engine against the in-RAM node graph, resume after SIGKILL, cancel, bad input."""
from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from engine_testing import (child_disk_full, child_removal, decode_all, make_clip, node_graph,
                            random_propainter, small_settings)
from shared_paths import ROOT
from vanish.nodes import engine, inpainting
from vanish.nodes.engine.segments import segment_plan
from vanish.nodes.ops.inpaint_runner import RunSettings
from vanish.nodes.ops.sam2_prompts import PromptSet

FLOW_FILL = inpainting.InpaintModel("flow_fill", torch.device("cpu"))
LOSSLESS = engine.OutputOptions(format="ffv1-mkv")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip"), t=24)


def test_video_source_reads_any_window_like_load_video_frames(clip):
    from vanish.nodes.ops.video_frames import TensorFrames
    from vanish.nodes.video_io import VanishLoadVideoFrames

    frames, *_ = VanishLoadVideoFrames().load("", 0, 0, 1, 0.0, 0, 0, path=str(clip.video))
    view = TensorFrames(frames)
    expected = np.stack([view[i] for i in range(len(view))])
    source = engine.open_source(clip.video)
    assert (source.num_frames, source.height, source.width, source.has_audio) == (24, 48, 64, True)
    for start, stop in [(0, 5), (5, 9), (20, 24), (3, 4), (12, 20), (0, 24)]:  # forwards, backwards, seeks
        assert np.array_equal(source.read(start, stop), expected[start:stop]), (start, stop)


@pytest.mark.parametrize("crop", ["off", "auto"])
def test_flow_fill_equals_the_node_graph_bit_for_bit(clip, tmp_path, crop):
    options = engine.MaskOptions(grow=3, feather=1.0, temporal_sigma=1.0)
    run = RunSettings(backend="flow_fill", crop=crop, crop_margin=4)
    expected, soft = node_graph(clip, options, run, FLOW_FILL)
    settings = engine.RemovalSettings(inpaint=run, mask=options, output=LOSSLESS)
    seen = []
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", settings, masks=clip.mask,
                                progress=lambda done, total: seen.append((done, total)))
    out = decode_all(result.output)
    source = decode_all(clip.video)
    outside = soft == 0
    assert np.array_equal(out[outside], source[outside])  # the originals, untouched
    assert not np.array_equal(out[~outside], source[~outside])  # something was removed
    if crop == "auto":  # the object crosses the frame: over the whole clip the extent is too big to crop
        assert node_graph.last_crop == {"x": 0, "y": 0, "width": 64, "height": 48}
    # one segment covers this clip with flow_fill's 30-frame context: equal inside too
    assert np.array_equal(out, expected)
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert result.preview.dtype == np.uint8 and result.preview.shape[0] == 8
    assert np.array_equal(result.preview[-1], out[-1])  # previews are output frames (small clips unscaled)
    with av.open(str(result.output)) as container:  # the source's sound is passed through
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "flac"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"]  # no partial file left


@pytest.mark.slow  # ProPainter runs at 128 px or more: about 30 s of CPU twice
def test_random_weight_propainter_equals_the_node_graph(tmp_path):
    clip = make_clip(tmp_path / "clip", t=3, h=48, w=64, audio=False)
    options = engine.MaskOptions(grow=2, feather=1.0)
    run = RunSettings(backend="propainter", raft_iter=1, neighbor_length=4, ref_stride=4, subvideo_length=8)
    models = random_propainter()
    from vanish.nodes import _comfy

    networks = inpainting._Networks(models.raft, models.flow_completion, models.generator)
    node_model = inpainting.InpaintModel("propainter", torch.device("cpu"), torch.float32,
                                         _comfy.ManagedModel(networks, torch.device("cpu")))
    expected, soft = node_graph(clip, options, run, node_model)
    settings = engine.RemovalSettings(inpaint=run, mask=options, output=LOSSLESS, window=1)
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", settings, masks=clip.mask,
                                inpaint_models=models)
    out = decode_all(result.output)
    outside = soft == 0
    assert np.array_equal(out[outside], decode_all(clip.video)[outside])
    # window 1 with ProPainter's 10 context frames: every span is the whole clip, so the
    # segments merge into one and the fill equals the node's exactly
    assert result.segments_run == 1 and np.array_equal(out, expected)


def test_auto_crop_follows_each_segments_mask_extent(tmp_path):
    from vanish.nodes.engine.masks import refine_window
    from vanish.nodes.engine.segments import run_segment

    wide = make_clip(tmp_path / "clip", t=16, h=64, w=128, audio=False)
    settings = small_settings(crop="auto", crop_margin=4)
    source = engine.open_source(wide.video)
    masks = engine.open_mask_source(wide.mask, source)
    crops = [run_segment(source, masks, settings, segment).crop for segment in segment_plan(16, settings)]
    assert all(w * h <= 128 * 64 / 2 for _, _, w, h in crops), crops  # each span's extent is small...
    assert len({x for x, *_ in crops}) > 2, crops  # ...and follows the object
    result = engine.run_removal(wide.video, tmp_path / "out.mkv", settings, masks=wide.mask)
    out, original = decode_all(result.output), decode_all(wide.video)
    soft, _ = refine_window(masks, 0, 16, settings.mask)
    outside = soft.numpy() == 0
    assert np.array_equal(out[outside], original[outside]) and not np.array_equal(out, original)


def test_resume_after_sigkill_skips_finished_segments_and_gives_the_same_file(clip, tmp_path):
    settings = small_settings()
    plan = segment_plan(24, settings)
    assert len(plan) == 6
    reference = engine.run_removal(clip.video, tmp_path / "reference.mkv", settings, masks=clip.mask)
    work = tmp_path / "work"
    output = tmp_path / "out.mkv"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=child_removal, args=(str(clip.video), str(clip.mask), str(output),
                                                        str(work), 0.05))
    child.start()
    deadline = time.monotonic() + 120
    done: list[Path] = []
    while time.monotonic() < deadline and len(done) < 2 and child.is_alive():
        done = list(work.glob("*/segments/segment_*.npz"))
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    finished = sorted(p.name for p in work.glob("*/segments/segment_*.npz"))
    assert 2 <= len(finished) < len(plan), finished
    assert not output.exists()
    result = engine.run_removal(clip.video, output, settings, masks=clip.mask, work_dir=work)
    assert (result.segments_reused, result.segments_run) == (len(finished), len(plan) - len(finished))
    assert output.read_bytes() == reference.output.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "out.mkv", "reference.mkv", "work"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "reference.mkv", "work"]


def test_cancel_removes_the_partial_output_and_keeps_the_work_folder(clip, tmp_path):
    def should_cancel() -> bool:  # cancel as soon as the first segment is stored
        return any((tmp_path / "work").glob("*/segments/segment_*.npz"))

    with pytest.raises(engine.Cancelled):
        engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                           work_dir=tmp_path / "work", should_cancel=should_cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert list((tmp_path / "work").glob("*/segments/segment_*.npz"))


def test_cancel_during_the_encoders_final_drain_removes_the_partial_output(clip, tmp_path, monkeypatch):
    """The engine's encode polls its cancel check while the encoder drains after the last frame."""
    from cancel_timing import CANCEL_BOUND_S, SLOW_DRAIN_S, slow_drain, wait_for_encoder_threads
    from vanish.nodes.ops import video_encode as ve

    drain_started: list[float] = []
    slow_drain(monkeypatch, ve, lambda: drain_started.append(time.monotonic()))
    with pytest.raises(engine.Cancelled):
        engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                           work_dir=tmp_path / "work", should_cancel=lambda: bool(drain_started))
    assert time.monotonic() - drain_started[0] < CANCEL_BOUND_S < SLOW_DRAIN_S
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # no output, no partial file
    wait_for_encoder_threads()
    assert [p.name for p in tmp_path.iterdir()] == ["work"]


# --------------------------------------------------------------------------- bad input
def _error(text: str, *args, **kwargs) -> engine.EngineError:
    with pytest.raises(engine.EngineError) as info:
        engine.run_removal(*args, **kwargs)
    assert text in str(info.value) and "Fix:" in str(info.value), str(info.value)
    return info.value


def test_unreadable_and_missing_sources(clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    _error("cannot be read", broken, tmp_path / "o.mkv", small_settings(), masks=clip.mask)
    _error("does not exist", tmp_path / "missing.mp4", tmp_path / "o.mkv", small_settings(), masks=clip.mask)
    _error("input 'masks'", clip.video, tmp_path / "o.mkv", small_settings(), masks=broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_a_source_without_a_video_stream(clip, tmp_path):
    from vanish.nodes.ops.video_audio import AudioClip, add_audio_stream, encode_audio

    sound = tmp_path / "sound.mkv"
    with av.open(str(sound), "w", format="matroska") as out:
        samples = AudioClip(np.zeros((1, 8000), np.float32), 8000)
        encode_audio(out, add_audio_stream(out, "flac", samples), samples)
    _error("has no video stream", sound, tmp_path / "o.mkv", small_settings(), masks=clip.mask)


def test_prompts_and_masks_that_do_not_fit_the_clip(clip, tmp_path):
    late = PromptSet.from_json({"objects": [{"id": 1, "frames": {"30": {"positive": [[10, 10]]}}}]})
    _error("frame 30", clip.video, tmp_path / "o.mkv", small_settings(), prompts=late)
    outside = PromptSet.from_json({"objects": [{"id": 1, "frames": {"0": {"positive": [[500, 10]]}}}]})
    _error("input 'prompts'", clip.video, tmp_path / "o.mkv", small_settings(), prompts=outside)
    short = make_clip(tmp_path / "short", t=5)
    _error("has 5 frames but the clip has 24", clip.video, tmp_path / "o.mkv", small_settings(), masks=short.mask)
    _error("both given or both missing", clip.video, tmp_path / "o.mkv", small_settings())
    assert not (tmp_path / "o.mkv").exists()


def test_existing_output_is_never_overwritten(clip, tmp_path):
    mine = tmp_path / "mine.mkv"
    mine.write_bytes(b"the user's file")
    _error("already exists", clip.video, mine, small_settings(), masks=clip.mask)
    _error("not an existing folder", clip.video, tmp_path / "nope" / "o.mkv", small_settings(), masks=clip.mask)
    assert mine.read_bytes() == b"the user's file" and not (tmp_path / "nope").exists()


def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point for a small tmpfs (mount(2) through libc; skipped when not allowed here)."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    _libc().umount2(str(point).encode(), 2)  # MNT_DETACH


def _mount(point: Path, options: str, read_only: bool = False) -> None:
    ms_rdonly = 1
    done = _libc().mount(b"tmpfs", str(point).encode(), b"tmpfs", ms_rdonly if read_only else 0,
                         options.encode())
    if done != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")


def test_unwritable_output_folder(clip, tmpfs):
    _mount(tmpfs, "size=64k", read_only=True)
    _error("not writable", clip.video, tmpfs / "o.mkv", small_settings(), masks=clip.mask)


def test_disk_full_while_writing(clip, tmp_path, tmpfs):
    _mount(tmpfs, "size=96k")
    mine = tmpfs / "mine.txt"
    mine.write_text("keep me")
    error = _error("is full", clip.video, tmpfs / "o.mkv", small_settings(), masks=clip.mask,
                   work_dir=tmp_path / "work")
    assert "finished segments are kept" in str(error)
    assert sorted(p.name for p in tmpfs.iterdir()) == ["mine.txt"] and mine.read_text() == "keep me"


def test_file_size_limit_in_a_child_is_a_clear_error(clip, tmp_path):
    queue = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(
        target=child_disk_full, args=(str(clip.video), str(clip.mask), str(tmp_path / "o.mkv"), 60_000, queue))
    child.start()
    message = queue.get(timeout=120)
    child.join()
    assert message.startswith("EngineError") and "is full" in message, message
    assert not list(tmp_path.iterdir())


def test_engine_imports_no_comfyui_and_no_subprocess():
    for path in (ROOT / "nodes" / "engine").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            for name in names:
                assert name.split(".")[0] not in {"comfy", "folder_paths", "server", "subprocess"}, (path, name)
                assert name != "_comfy", (path, name)


@pytest.mark.slow  # 70 frames through four overlapping segments of 50-70 frames
def test_several_flow_fill_segments_equal_the_whole_clip_node_graph(tmp_path):
    clip = make_clip(tmp_path / "clip", t=70, h=32, w=40, audio=False)
    options = engine.MaskOptions(grow=2, feather=1.0, temporal_sigma=1.5)
    run = RunSettings(backend="flow_fill")
    expected, soft = node_graph(clip, options, run, FLOW_FILL)
    settings = engine.RemovalSettings(inpaint=run, mask=options, output=LOSSLESS, window=20)
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", settings, masks=clip.mask)
    assert result.segments_run == 4
    out = decode_all(result.output)
    outside = soft == 0
    assert np.array_equal(out[outside], expected[outside])
    # Inside the mask: the segment whose span is the whole clip (core 20-39 here) sees exactly what
    # the node's run sees and is equal. flow_fill's recursions (the fill it invents for never-seen
    # pixels, carried along the flow, and its temporal blend) run through the whole clip forward
    # and backward; a segment that starts later or ends earlier starts them afresh at its first
    # and last context frames. That is the segment bound: a different but equally valid fill inside
    # the mask, never a change outside it.
    diff = np.abs(out.astype(int) - expected.astype(int)).max(axis=-1)  # [T, H, W]
    assert not diff[20:40].any()
    hole = ~outside
    hole[20:40] = False
    assert diff[hole].mean() < 16, diff[hole].mean()


def test_frames_in_memory_an_image_folder_and_one_mask_image(tmp_path):
    import cv2

    from engine_testing import make_frames

    frames = make_frames(10, 48, 64)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 20:40] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):  # 2.png before 10.png: natural order
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    settings = small_settings(window=4, context=2)
    soft = engine.open_mask_source(tmp_path / "mask.png", engine.open_source(frames)).read(0, 1)[0]
    assert soft.shape == (48, 64) and soft.max() == 1.0
    outputs = []
    untouched = frames.copy()
    for index, source in enumerate([frames, torch.from_numpy(frames).float() / 255.0, folder]):
        result = engine.run_removal(source, tmp_path / f"out{index}.mkv", settings, masks=tmp_path / "mask.png")
        out = decode_all(result.output)
        far = np.ones((48, 64), bool)
        far[5:25, 15:45] = False  # the mask grown by 2 and feathered stays inside this box
        assert np.array_equal(out[:, far], frames[:, far]) and not np.array_equal(out, frames)
        outputs.append(out)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
    assert np.array_equal(frames, untouched)  # the caller's frames are never written to


def test_publish_moves_on_to_the_name_if_taken_gives_and_never_replaces(tmp_path):
    from vanish.nodes.engine.errors import EngineError
    from vanish.nodes.engine.output import publish

    taken = tmp_path / "out_00001_.mp4"
    taken.write_bytes(b"the user's")
    partial = tmp_path / ".out.partial"
    partial.write_bytes(b"result")
    with pytest.raises(EngineError, match="appeared while the job ran"):
        publish(partial, taken, overwrite=False)
    assert partial.read_bytes() == b"result" and taken.read_bytes() == b"the user's"
    names = iter([tmp_path / "out_00002_.mp4"])
    final = publish(partial, taken, overwrite=False, if_taken=lambda name: next(names))
    assert final == tmp_path / "out_00002_.mp4" and final.read_bytes() == b"result"
    assert taken.read_bytes() == b"the user's" and not partial.exists()


def test_flow_fill_plans_its_memory_against_the_ram_even_with_a_gpu_named(tmp_path, monkeypatch):
    # flow_fill runs on the CPU whatever the device: its memory plan must read the free RAM, not the
    # named accelerator's memory (on this machine, asking CUDA for it would fail outright).
    from vanish.nodes.engine import segments
    from vanish.nodes.engine.segments import run_segment

    asked = []
    real = segments._free_memory
    monkeypatch.setattr(segments, "_free_memory", lambda device: asked.append(device.type) or real(torch.device("cpu")))
    small = make_clip(tmp_path / "clip", t=8, h=48, w=64, audio=False)
    settings = small_settings()
    assert settings.inpaint.backend == "flow_fill"
    source = engine.open_source(small.video)
    masks = engine.open_mask_source(small.mask, source)
    run_segment(source, masks, settings, segment_plan(8, settings)[0], device="cuda")
    assert asked and set(asked) == {"cpu"}
