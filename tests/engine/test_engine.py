"""The streaming engine against the in-RAM node graph, resume after SIGKILL, cancel, bad input."""
from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import subprocess  # noqa: F401  (never used: the rule is checked below for the engine's files)
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
    from vanish.nodes.video_io import LoadVideoFrames

    frames, *_ = LoadVideoFrames().load("", 0, 0, 1, 0.0, 0, 0, path=str(clip.video))
    view = TensorFrames(frames)
    expected = np.stack([view[i] for i in range(len(view))])
    source = engine.open_source(clip.video)
    assert (source.num_frames, source.height, source.width, source.has_audio) == (24, 48, 64, True)
    for start, stop in [(0, 5), (5, 9), (20, 24), (3, 4), (12, 20), (0, 24)]:  # forwards, backwards, seeks
        assert np.array_equal(source.read(start, stop), expected[start:stop]), (start, stop)


def test_flow_fill_equals_the_node_graph_bit_for_bit(clip, tmp_path):
    options = engine.MaskOptions(grow=3, feather=1.0, temporal_sigma=1.0)
    run = RunSettings(backend="flow_fill")
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
    # one segment covers this clip with flow_fill's 30-frame context: equal inside too
    assert np.array_equal(out, expected)
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert result.preview.dtype == np.uint8 and result.preview.shape[0] == 8
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
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 40

    with pytest.raises(engine.Cancelled):
        engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                           work_dir=tmp_path / "work", should_cancel=should_cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert list((tmp_path / "work").glob("*/segments/segment_*.npz"))


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


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point; skips when this machine cannot mount (not root)."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    os.system(f"umount {point} 2>/dev/null")  # noqa: S605 - test clean-up only


def _mount(point: Path, options: str) -> None:
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o {options} tmpfs {point} 2>/dev/null") != 0:  # noqa: S605
        pytest.skip("cannot mount a tmpfs here")


def test_unwritable_output_folder(clip, tmpfs):
    _mount(tmpfs, "ro,size=64k")
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
