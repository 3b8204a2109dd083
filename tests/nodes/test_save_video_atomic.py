"""Save Video's output appears atomically: a hidden partial while encoding, the final name only
when the file is complete, never over a file someone else made meanwhile (fake ComfyUI folders)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vanish.nodes import _comfy, video_io
from vanish.nodes._errors import VanishError
from vanish.nodes.ops import video_encode as ve

SAVE = video_io.VanishSaveVideo()
USER_BYTES = b"a file another save (or the user) made while ours was encoding"


def save(fmt: str = "h264-mp4", count: int = 4, **extra) -> dict:
    frames = torch.rand(count, 32, 48, 3, generator=torch.Generator().manual_seed(1))
    return SAVE.save("vanish/test", fmt, 19, 25.0, images=frames, **extra)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def is_partial(name: str, final: str) -> bool:
    return name.startswith(f".{final}.vanish-") and name.endswith(".partial")


def watch_progress(monkeypatch, hook) -> None:
    """Call ``hook(frame_count)`` after each encoded frame (Save Video's progress update)."""
    set_progress = _comfy.Progress.set

    def set_and_watch(bar, value):
        set_progress(bar, value)
        hook(value)

    monkeypatch.setattr(_comfy.Progress, "set", set_and_watch)


@pytest.mark.parametrize("fmt, final", [("h264-mp4", "test_00001_.mp4"), ("png-sequence", "test_00001_png")])
def test_only_a_hidden_partial_exists_while_encoding(comfy, monkeypatch, fmt, final):
    folder = comfy.output / "vanish"
    seen: list[list[str]] = []
    watch_progress(monkeypatch, lambda _: seen.append(names(folder)))
    check_cancel = _comfy.throw_if_interrupted  # also polled while the encoder drains

    def check_and_watch():
        seen.append(names(folder))
        check_cancel()

    monkeypatch.setattr(_comfy, "throw_if_interrupted", check_and_watch)
    result = save(fmt)
    during = [listing for listing in seen if listing]
    assert len(during) >= 4, seen  # one per frame at least
    for listing in during:
        assert final not in listing, listing
        assert len(listing) == 1 and is_partial(listing[0], final), listing
    assert names(folder) == [final]  # published, no partial left
    assert Path(result["result"][0]) == folder / final


def test_a_name_taken_during_the_encode_is_kept_and_the_save_takes_the_next_counter(comfy, monkeypatch):
    folder = comfy.output / "vanish"
    encodes = []
    encode_video = ve.encode_video
    monkeypatch.setattr(ve, "encode_video", lambda *a, **k: encodes.append(a[0]) or encode_video(*a, **k))

    def take_the_name(frame_count):
        if frame_count == 1:
            with open(folder / "test_00001_.mp4", "xb") as handle:  # fails if our save had it open
                handle.write(USER_BYTES)

    watch_progress(monkeypatch, take_the_name)
    result = save("h264-mp4")
    saved = Path(result["result"][0])
    assert saved == folder / "test_00002_.mp4"
    assert result["ui"]["images"] == [{"filename": "test_00002_.mp4", "subfolder": "vanish", "type": "output"}]
    assert (folder / "test_00001_.mp4").read_bytes() == USER_BYTES
    assert names(folder) == ["test_00001_.mp4", "test_00002_.mp4"]
    assert len(encodes) == 1  # published under the next name, not encoded again
    ve.check_decodes(saved, 4)  # the whole video, under its new name


def test_a_png_sequence_taken_during_the_encode_lands_on_the_next_counter(comfy, monkeypatch):
    folder = comfy.output / "vanish"

    def take_the_name(frame_count):
        if frame_count == 2:
            (folder / "test_00001_png").mkdir()
            (folder / "test_00001_png" / "00000.png").write_bytes(USER_BYTES)

    watch_progress(monkeypatch, take_the_name)
    result = save("png-sequence", count=3)
    assert Path(result["result"][0]) == folder / "test_00002_png"
    assert names(folder / "test_00001_png") == ["00000.png"]
    assert (folder / "test_00001_png" / "00000.png").read_bytes() == USER_BYTES
    assert names(folder / "test_00002_png") == ["00000.png", "00001.png", "00002.png"]
    assert {e["subfolder"] for e in result["ui"]["images"]} == {"vanish/test_00002_png"}
    assert names(folder) == ["test_00001_png", "test_00002_png"]


@pytest.mark.parametrize("fmt", ["h264-mp4", "png-sequence"])
def test_cancel_leaves_neither_partial_nor_final(comfy, monkeypatch, fmt):
    folder = comfy.output / "vanish"
    seen: list[list[str]] = []

    def cancel_after_two_frames(frame_count):
        seen.append(names(folder))
        if frame_count == 2:
            _comfy.request_cancel(True)

    watch_progress(monkeypatch, cancel_after_two_frames)
    try:
        with pytest.raises(_comfy.Interrupted):
            save(fmt)
    finally:
        _comfy.request_cancel(False)
    assert any(seen), "the partial existed before the cancel"
    assert names(folder) == []


def test_an_encoder_failure_removes_the_partial(comfy, monkeypatch):
    def unreadable(path, count):
        assert is_partial(path.name, "test_00001_.mp4")  # the check reads the partial, not the final name
        raise ValueError("the written file does not read back")

    monkeypatch.setattr(ve, "check_decodes", unreadable)
    with pytest.raises(VanishError, match=r"Save Video(.|\n)*input 'format'(.|\n)*does not read back"):
        save("h264-mp4")
    assert names(comfy.output / "vanish") == []


def test_names_full_to_the_limit_remove_the_partial(comfy, monkeypatch):
    folder = comfy.output / "vanish"
    monkeypatch.setattr(video_io, "MAX_SKIPPED_NAMES", 3)

    def fill_the_names(frame_count):
        if frame_count == 1:
            for counter in (1, 2, 3, 4):
                (folder / f"test_{counter:05}_.mp4").write_bytes(USER_BYTES)

    watch_progress(monkeypatch, fill_the_names)
    with pytest.raises(VanishError, match=r"input 'filename_prefix' has 3 existing files"):
        save("h264-mp4")
    assert names(folder) == [f"test_{counter:05}_.mp4" for counter in (1, 2, 3, 4)]
    assert all((folder / name).read_bytes() == USER_BYTES for name in names(folder))
