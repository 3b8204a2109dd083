"""nodes/ops/atomic_output: hidden partial names, their removal, and publishing without replacing."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from vanish.nodes.ops import atomic_output as ao

RESULT, USER = b"the finished output", b"the user's file"


def partial_file(folder: Path) -> Path:
    partial = ao.partial_path(folder / "out.mp4", ao.new_key())
    partial.write_bytes(RESULT)
    return partial


def partial_folder(folder: Path) -> Path:
    partial = ao.partial_path(folder / "out_png", ao.new_key())
    partial.mkdir()
    (partial / "00000.png").write_bytes(RESULT)
    return partial


@pytest.fixture
def no_hard_links(monkeypatch):
    """A file system without hard links (FAT, exFAT, some network shares)."""
    def refuse(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(ao.os, "link", refuse)


def test_partial_path_is_hidden_beside_the_target_and_unique_per_key(tmp_path):
    target = tmp_path / "sub" / "clip_00001_.mp4"
    partial = ao.partial_path(target, "0123456789abcdef")
    assert partial == tmp_path / "sub" / ".clip_00001_.mp4.vanish-0123456789ab.partial"
    assert ao.partial_path(target, ao.new_key()) != ao.partial_path(target, ao.new_key())
    assert len(ao.new_key()) == ao.KEY_LENGTH


def test_remove_partial_takes_files_folders_and_missing_names(tmp_path):
    for partial in (partial_file(tmp_path), partial_folder(tmp_path)):
        ao.remove_partial(partial)
        assert not partial.exists()
    ao.remove_partial(tmp_path / ".gone.partial")  # nothing there: no error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("links", ["hard links", "no hard links"])
def test_a_file_is_published_under_a_free_name(tmp_path, request, links):
    if links == "no hard links":
        request.getfixturevalue("no_hard_links")
    partial = partial_file(tmp_path)
    assert ao.publish_new(partial, tmp_path / "out.mp4") is True
    assert (tmp_path / "out.mp4").read_bytes() == RESULT and not partial.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.mark.parametrize("links", ["hard links", "no hard links"])
@pytest.mark.parametrize("taken_by", ["file", "folder", "dangling link"])
def test_a_taken_name_is_never_replaced(tmp_path, request, links, taken_by):
    if links == "no hard links":
        request.getfixturevalue("no_hard_links")
    target = tmp_path / "out.mp4"
    if taken_by == "file":
        target.write_bytes(USER)
    elif taken_by == "folder":
        target.mkdir()  # empty: POSIX would let a folder rename replace it
    else:
        os.symlink(tmp_path / "nowhere", target)
    for partial in (partial_file(tmp_path), partial_folder(tmp_path)):
        assert ao.publish_new(partial, target) is False
        assert partial.exists()  # left for the caller: publish elsewhere, or remove
    if taken_by == "file":
        assert target.read_bytes() == USER
    elif taken_by == "folder":
        assert target.is_dir() and list(target.iterdir()) == []
    else:
        assert target.is_symlink() and not target.exists()


def test_a_folder_is_published_under_a_free_name(tmp_path):
    partial = partial_folder(tmp_path)
    assert ao.publish_new(partial, tmp_path / "out_png") is True
    assert (tmp_path / "out_png" / "00000.png").read_bytes() == RESULT
    assert [p.name for p in tmp_path.iterdir()] == ["out_png"]


def test_a_name_taken_between_the_check_and_the_rename_is_not_replaced(tmp_path, monkeypatch):
    """Without hard links the check and the rename are two steps: a folder made between them
    (non-empty, so POSIX refuses the rename) is reported as taken, not as an error."""
    partial, target = partial_folder(tmp_path), tmp_path / "out_png"
    rename = os.rename

    def someone_else_first(src, dst):
        Path(dst).mkdir()
        (Path(dst) / "theirs.png").write_bytes(USER)
        rename(src, dst)

    monkeypatch.setattr(ao.os, "rename", someone_else_first)
    assert ao.publish_new(partial, target) is False
    assert (target / "theirs.png").read_bytes() == USER and partial.is_dir()


def test_other_failures_raise(tmp_path, no_hard_links, monkeypatch):
    def read_only(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(ao.os, "rename", read_only)
    partial = partial_file(tmp_path)
    with pytest.raises(PermissionError):
        ao.publish_new(partial, tmp_path / "out.mp4")
    assert partial.read_bytes() == RESULT and not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("name", ["z" * 255, "é" * 125 + ".mp4", "clip_00001_.mp4"])
def test_partial_names_fit_a_file_name_however_long_the_target(tmp_path, name):
    target = tmp_path / name[:255]
    partials = {ao.partial_path(target, ao.new_key()) for _ in range(3)}
    assert len(partials) == 3
    for partial in partials:
        assert len(partial.name.encode("utf-8")) <= ao.MAX_NAME_BYTES
        assert partial.name.startswith("." + name[:20]) and partial.name.endswith(".partial")
        partial.write_bytes(RESULT)  # a real name on this file system
    assert ao.partial_path(tmp_path / "clip.mp4", "k" * 12).name == ".clip.mp4.vanish-kkkkkkkkkkkk.partial"
