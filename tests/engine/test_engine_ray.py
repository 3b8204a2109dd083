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
