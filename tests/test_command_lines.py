"""The scripts a newcomer runs first: bad arguments give argparse errors, --help writes nothing."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from shared_paths import ROOT


def _script(path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo():
    return _script(ROOT / "bench" / "demo_remove.py")


@pytest.fixture(scope="module")
def make_workflows():
    return _script(ROOT / "tests" / "make_workflows.py")


@pytest.mark.parametrize("argv, message", [
    (["--size", "320"], "argument --size: '320' is not WIDTHxHEIGHT"),
    (["--size", "8x8"], "each side must be 32 to 4096"),
    (["--frames", "0"], "argument --frames: 0 frames: give 2 to"),
    (["--frames", "many"], "is not a whole number"),
])
def test_demo_bad_arguments_exit_2_with_a_message(demo, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        demo.parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_demo_out_needs_an_existing_parent(demo, tmp_path, capsys):
    target = tmp_path / "missing" / "x"
    with pytest.raises(SystemExit) as stop:
        demo.parse_args(["--out", str(target)])
    assert stop.value.code == 2 and "parent folder" in capsys.readouterr().err
    assert not target.parent.exists()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(SystemExit):
        demo.parse_args(["--out", str(tmp_path / "file")])
    assert (tmp_path / "file").read_text() == "mine"
    args = demo.parse_args(["--out", str(tmp_path / "new"), "--size", "64x48", "--frames", "2"])
    assert args.out == (tmp_path / "new").resolve() and args.size == (64, 48) and args.frames == 2


def test_make_workflows_help_writes_nothing(make_workflows, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_workflows, "WORKFLOWS", tmp_path / "workflows")
    with pytest.raises(SystemExit) as stop:
        make_workflows.main(["--help"])
    assert stop.value.code == 0 and "--check" in capsys.readouterr().out
    assert not (tmp_path / "workflows").exists()


def test_make_workflows_check_finds_stale_files(make_workflows, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_workflows, "WORKFLOWS", tmp_path)
    assert make_workflows.main([]) == 0
    written = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    assert make_workflows.main(["--check"]) == 0
    name = sorted(written)[0]
    (tmp_path / name).write_text(written[name].replace('"version": 0.4', '"version": 0.3'))
    assert make_workflows.main(["--check"]) == 1
    assert name in capsys.readouterr().err
    assert (tmp_path / name).read_text() != written[name]  # --check never rewrites


def test_shipped_workflows_are_what_make_workflows_writes(make_workflows, capsys):
    assert make_workflows.main(["--check"]) == 0, capsys.readouterr().err
