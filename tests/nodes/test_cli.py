"""The command line (nodes/cli.py): help, argument errors, Ctrl-C, clicks, a mask video, a batch."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_testing import cli_in_child, files_under, write_box_mask, write_scene
from engine_testing import decode_all
from vanish.nodes import cli
from vanish.nodes.ops import video_decode as vd

FRAMES = 6


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-frame 96x64 clip with a moving ball, and its mask video (made once)."""
    return write_scene(tmp_path_factory.mktemp("scene"), FRAMES)


def test_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "remove" in capsys.readouterr().out
    assert cli.main(["remove", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--click", "--box", "--prompts", "--mask", "--backend", "--models", "--sam2", "--device",
                 "--format", "--crf", "--out", "--work-dir", "--ray", "--jobs"):
        assert flag in text


def _bad_arguments(scene, tmp: Path) -> dict[str, tuple[list[str], str]]:
    clip, mask = (str(p) for p in scene)
    (tmp / "notes.txt").write_text("not a video")
    (tmp / "taken.mp4").write_bytes(b"mine")
    (tmp / "jobs.json").write_text("[{clip: 1}")
    ckpt = tmp / "fake_sam2.pt"
    ckpt.write_bytes(b"not a checkpoint")
    # name -> (argv, what the message must name)
    return {
        "crf not a number": (["remove", clip, "--mask", mask, "--crf", "best"], "--crf"),
        "crf out of range": (["remove", clip, "--mask", mask, "--crf", "99"], "--crf"),
        "click not a point": (["remove", clip, "--click", "12;30"], "--click"),
        "box without area": (["remove", clip, "--box", "50,50,10,10"], "--box"),
        "clip missing": (["remove", str(tmp / "nope.mp4"), "--mask", mask], "CLIP"),
        "no clip": (["remove", "--mask", mask], "CLIP"),
        "clip not a video": (["remove", str(tmp / "notes.txt"), "--mask", mask], "CLIP"),
        "out in a missing folder": (["remove", clip, "--mask", mask, "--out", str(tmp / "new" / "x.mp4")], "--out"),
        "out under root": (["remove", clip, "--mask", mask, "--out", "/vanish_nonexistent_dir/x.mp4"], "--out"),
        "out exists": (["remove", clip, "--mask", mask, "--out", str(tmp / "taken.mp4")], "--out"),
        "out extension": (["remove", clip, "--mask", mask, "--out", str(tmp / "x.avi")], "--out"),
        "format vs extension": (["remove", clip, "--mask", mask, "--out", str(tmp / "x.mp4"),
                                 "--format", "vp9-webm"], "--out"),
        "nothing to remove": (["remove", clip], "nothing to remove"),
        "mask and click": (["remove", clip, "--mask", mask, "--click", "10,10", "--sam2", str(ckpt)], "--mask"),
        "mask missing": (["remove", clip, "--mask", str(tmp / "nomask.png")], "--mask"),
        "click without sam2": (["remove", clip, "--click", "10,10"], "--sam2"),
        "sam2 missing": (["remove", clip, "--click", "10,10", "--sam2", str(tmp / "none.pt")], "--sam2"),
        "sam2 not a checkpoint": (["remove", clip, "--click", "10,10", "--sam2", str(ckpt)], "--sam2"),
        "click outside the frame": (["remove", clip, "--click", "500,10", "--sam2", str(ckpt)], "--click"),
        "click on a missing frame": (["remove", clip, "--click", "10,10@40", "--sam2", str(ckpt)], "--click"),
        "prompts missing": (["remove", clip, "--prompts", str(tmp / "p.json"), "--sam2", str(ckpt)], "--prompts"),
        "prompts not json": (["remove", clip, "--prompts", str(tmp / "notes.txt"), "--sam2", str(ckpt)], "--prompts"),
        "propainter without models": (["remove", clip, "--mask", mask, "--backend", "propainter"], "--models"),
        "propainter models missing": (["remove", clip, "--mask", mask, "--backend", "propainter",
                                       "--models", str(tmp)], "--models"),
        "device": (["remove", clip, "--mask", mask, "--device", "tpu"], "--device"),
        "jobs not json": (["remove", "--jobs", str(tmp / "jobs.json")], "--jobs"),
        "work dir parent missing": (["remove", clip, "--mask", mask, "--work-dir", str(tmp / "a" / "b")],
                                    "--work-dir"),
        "demo size": (["demo", "--size", "320"], "--size"),
        "demo out parent missing": (["demo", "--out", str(tmp / "a" / "b")], "--out"),
    }


def test_every_argument_error_exits_2_and_writes_nothing(scene, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = _bad_arguments(scene, tmp_path)
    if torch.cuda.is_available():
        cases.pop("device")
    before_scene, before_tmp = files_under(scene[0].parent), files_under(tmp_path)
    for name, (argv, named) in cases.items():
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert named in err and "Fix:" in err, (name, err)
        assert "Traceback" not in err, (name, err)
        assert files_under(tmp_path) == before_tmp, name
        assert files_under(scene[0].parent) == before_scene, name
    assert not Path("/vanish_nonexistent_dir").exists()


def test_mask_video_keeps_pixels_outside_the_mask(scene, tmp_path, capsys):
    clip, mask = scene
    out = tmp_path / "clean.mkv"  # the extension picks lossless FFV1, so pixels can be compared
    assert cli.main(["remove", str(clip), "--mask", str(mask), "--out", str(out), "--quiet",
                     "--grow", "2", "--feather", "0"]) == 0
    assert str(out) in capsys.readouterr().out
    result, original, masks = decode_all(out), decode_all(clip), decode_all(mask)
    assert result.shape == original.shape == (FRAMES, 64, 96, 3)
    import cv2

    near = np.stack([cv2.dilate(m.max(axis=-1), np.ones((15, 15), np.uint8)) > 0 for m in masks])
    assert np.array_equal(result[~near], original[~near])  # bit-exact away from the object
    assert not np.array_equal(result[near], original[near])  # the ball was filled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.mkv"]  # work folder removed after success


def test_own_clip_with_clicks(tmp_path, monkeypatch, capsys):
    from sam2_testing import IMAGE_SIZE, tiny_predictor
    from vanish.nodes.ops import sam2_loader

    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": tiny_predictor().state_dict()}, ckpt)  # random weights, real format
    real_load = sam2_loader.load_sam2
    monkeypatch.setattr(sam2_loader, "load_sam2", lambda path, precision="auto", device=None, image_size=None:
                        real_load(path, precision, device, IMAGE_SIZE))  # small input: seconds on a CPU
    clip, _ = write_scene(tmp_path / "short", 3)  # SAM 2 on a CPU: a few frames are enough
    out = tmp_path / "clicked.mp4"
    code = cli.main(["remove", str(clip), "--click", "30,35", "--exclude", "80,10",
                     "--sam2", str(ckpt), "--out", str(out), "--device", "cpu", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert vd.probe_video(out).frame_count == 3


def test_folder_batch_and_jobs_list(tmp_path, capsys):
    clips = tmp_path / "clips"
    for name, frames in (("a", 4), ("b", 5)):
        clip, _ = write_scene(tmp_path / name, frames)
        clips.mkdir(exist_ok=True)
        clip.rename(clips / f"{name}.mp4")
    mask = write_box_mask(tmp_path / "logo.png", 96, 64, (60, 4, 90, 20))
    results = tmp_path / "results"
    assert cli.main(["remove", str(clips), "--mask", str(mask), "--out", str(results), "--quiet"]) == 2
    assert not results.exists()  # --out for a batch must exist: never created silently
    results.mkdir()
    assert cli.main(["remove", str(clips), "--mask", str(mask), "--out", str(results), "--quiet"]) == 0
    assert sorted(p.name for p in results.iterdir()) == ["a_removed.mp4", "b_removed.mp4"]
    assert [vd.probe_video(results / n).frame_count for n in ("a_removed.mp4", "b_removed.mp4")] == [4, 5]
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"clip": "clips/a.mp4", "mask": "logo.png", "out": "results/a2.mkv"},
                                {"clip": "clips/b.mp4", "mask": "logo.png"}]))
    assert cli.main(["remove", "--jobs", str(jobs), "--quiet"]) == 0
    assert (results / "a2.mkv").is_file() and (clips / "b_removed.mp4").is_file()
    assert str(results / "a2.mkv") in capsys.readouterr().out


def test_demo(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--frames", "8", "--size", "96x64"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Result: ")][-1]
    result = Path(line[len("Result: "):])
    assert result.is_file() and vd.probe_video(result).frame_count == 8


def test_ctrl_c_while_the_demo_clip_is_encoded(tmp_path, monkeypatch, capsys):
    """The first Ctrl-C (a flag the engine polls) also stops the demo's clip, in the encoder's drain."""
    from cancel_timing import CANCEL_BOUND_S, SLOW_DRAIN_S, slow_drain, wait_for_encoder_threads
    from vanish.nodes.ops import video_encode as ve

    pressed: list[float] = []

    def ctrl_c() -> None:  # from the finishing thread: the handler runs on the waiting main thread
        pressed.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    slow_drain(monkeypatch, ve, ctrl_c)
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--frames", "8", "--size", "96x64"]) == cli.EXIT_INTERRUPTED
    assert time.monotonic() - pressed[0] < CANCEL_BOUND_S < SLOW_DRAIN_S
    assert "stopped by Ctrl-C" in capsys.readouterr().err
    wait_for_encoder_threads()
    assert list(out.iterdir()) == []  # no clip folder, no staging folder, no result


def _wait_for_progress(log: Path, process, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.is_alive():
        text = log.read_text(errors="replace") if log.exists() else ""
        if re.search(r"\|\s*[1-9]\d*/\d+", text):  # the bar moved: the engine is running
            return
        time.sleep(0.1)
    raise AssertionError(f"the command never showed progress:\n{log.read_text(errors='replace')[-2000:]}")


def test_ctrl_c_stops_cleanly_and_keeps_the_work_folder(tmp_path):
    clip, mask = write_scene(tmp_path / "long", 150, 128, 96)
    out = tmp_path / "clean.mp4"
    work = tmp_path / "work"
    log = tmp_path / "cli.log"
    argv = ["remove", str(clip), "--mask", str(mask), "--out", str(out), "--work-dir", str(work),
            "--segment-length", "10"]
    process = multiprocessing.get_context("spawn").Process(target=cli_in_child,
                                                          args=(argv, str(log), str(tmp_path)))
    process.start()
    try:
        _wait_for_progress(log, process)
        os.kill(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        process.join(60)
    finally:
        if process.is_alive():
            process.kill()
    text = log.read_text(errors="replace")
    assert process.exitcode == 130, text[-2000:]
    assert "Traceback" not in text and "Ctrl-C" in text
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.log", "long", "work"]  # no partial file
    assert work.is_dir()


@pytest.mark.slow
def test_batch_on_ray_gives_the_local_files(tmp_path):
    """--ray with a folder: each clip is one task on a real local Ray; same bytes as a local batch."""
    ray = pytest.importorskip("ray")
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, frames in (("a", 3), ("b", 4)):
        clip, _ = write_scene(tmp_path / name, frames)
        clip.rename(clips / f"{name}.mp4")
    mask = write_box_mask(tmp_path / "logo.png", 96, 64, (60, 4, 90, 20))
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    common = ["remove", str(clips), "--mask", str(mask), "--format", "ffv1-mkv", "--quiet"]
    assert cli.main(common + ["--out", str(local)]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert cli.main(common + ["--out", str(remote), "--ray", "local"]) == 0
    finally:
        ray.shutdown()
    names = sorted(p.name for p in local.iterdir())
    assert names == ["a_removed.mkv", "b_removed.mkv"] == sorted(p.name for p in remote.iterdir())
    for name in names:
        assert (local / name).read_bytes() == (remote / name).read_bytes()


def test_single_draw_reaches_the_weights_free_backend_as_one_fill():
    from vanish.nodes import cli_args, engine
    from vanish.nodes.ops.inpaint_runner import flow_fill_settings

    parser = cli_args.build_parser()
    for argv, second in ((["remove", "clip.mp4", "--mask", "mask.mp4"], True),
                         (["remove", "clip.mp4", "--mask", "mask.mp4", "--single-draw"], False)):
        settings = cli.removal_settings(parser.parse_args(argv), engine)
        assert flow_fill_settings(settings.inpaint).second_draw is second
