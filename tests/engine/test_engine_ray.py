"""Segments as real Ray tasks (a local Ray, ``ray.init(num_cpus=2)``): same bytes as in-process,
also when a worker is killed in the middle of a task."""
from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from engine_testing import decode_all, make_clip, small_settings  # noqa: E402
from vanish.nodes import engine  # noqa: E402
from vanish.nodes.engine.ray_backend import KILL_ONCE_ENV  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip"), t=24)


@pytest.fixture(scope="module")
def local_output(clip, tmp_path_factory):
    return engine.run_removal(clip.video, tmp_path_factory.mktemp("local") / "out.mkv", small_settings(),
                              masks=clip.mask).output


def test_ray_output_equals_local_bit_for_bit(local_ray, clip, local_output, tmp_path):
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                                ray_address="local")
    assert result.segments_run == 6
    assert result.output.read_bytes() == local_output.read_bytes()


def test_a_killed_worker_is_retried_and_the_output_is_the_same(local_ray, clip, local_output, tmp_path,
                                                                monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                                ray_address="local")
    assert marker.exists()  # a worker really died in a task
    assert result.output.read_bytes() == local_output.read_bytes()
    assert (decode_all(result.output) == decode_all(local_output)).all()


def test_ray_resumes_from_the_work_folder(local_ray, clip, local_output, tmp_path):
    work = tmp_path / "work"
    engine.run_removal(clip.video, tmp_path / "first.mkv", small_settings(), masks=clip.mask, work_dir=work,
                       keep_work=True)
    result = engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                                work_dir=work, ray_address="local")
    assert (result.segments_run, result.segments_reused) == (0, 6)
    assert result.output.read_bytes() == local_output.read_bytes()


def test_a_batch_runs_one_task_per_clip_and_equals_local(local_ray, clip, local_output, tmp_path):
    from vanish.nodes.engine.batch import BatchJob, run_batch

    other = make_clip(tmp_path / "other", t=10, audio=False)
    jobs = [BatchJob(clip.video, tmp_path / "a.mkv", masks=clip.mask, settings=small_settings()),
            BatchJob(other.video, tmp_path / "b.mkv", masks=other.mask, settings=small_settings()),
            BatchJob(tmp_path / "missing.mp4", tmp_path / "c.mkv", masks=other.mask, settings=small_settings())]
    seen = []
    results = run_batch(jobs, ray_address="local", progress=lambda d, t: seen.append((d, t)))
    assert (tmp_path / "a.mkv").read_bytes() == local_output.read_bytes()
    alone = engine.run_removal(other.video, tmp_path / "b_local.mkv", small_settings(), masks=other.mask)
    assert (tmp_path / "b.mkv").read_bytes() == alone.output.read_bytes()
    assert isinstance(results[2], engine.EngineError) and "does not exist" in str(results[2])
    assert seen[-1] == (3, 3) and not (tmp_path / "c.mkv").exists()


@pytest.mark.slow  # random-weight SAM 2 tiny in a Ray worker
def test_sam2_tracking_runs_as_one_ray_task_and_equals_local(local_ray, tmp_path):
    from sam2_testing import handle_for, tiny_predictor
    from vanish.nodes.ops.sam2_prompts import PromptSet

    short = make_clip(tmp_path / "clip", t=5, audio=False)
    prompts = PromptSet.from_json({"objects": [{"id": 1, "frames": {"2": {"positive": [[30, 22]]}}}]})
    handle = handle_for(tiny_predictor())
    local = engine.run_removal(short.video, tmp_path / "local.mkv", small_settings(), prompts=prompts, sam2=handle)
    remote = engine.run_removal(short.video, tmp_path / "ray.mkv", small_settings(), prompts=prompts, sam2=handle,
                                ray_address="local")
    assert remote.output.read_bytes() == local.output.read_bytes()


def test_cancel_while_waiting_for_ray_tasks(local_ray, clip, tmp_path):
    polls = {"n": 0}

    def should_cancel() -> bool:
        polls["n"] += 1
        return polls["n"] > 3

    with pytest.raises(engine.Cancelled):
        engine.run_removal(clip.video, tmp_path / "out.mkv", small_settings(), masks=clip.mask,
                           work_dir=tmp_path / "work", ray_address="local", should_cancel=should_cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
