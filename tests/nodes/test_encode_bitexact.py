"""``bitexact=True`` encodes give the same bytes whatever memory the process held before.

The streaming engine promises that a resumed or repeated run writes the same file; with
h264-mp4 the same frames gave different video packets now and then (9 runs, 3 files). The
cause is libx264 reading memory it never wrote (the macroblock-tree rate control with B-frames,
at widths that are not a multiple of 8 macroblocks); the run-to-run variation came from what
the heap held. The test makes that variation certain: two fresh processes whose heaps start
filled with different bytes (:mod:`bitexact_testing`) must write identical files.
"""
from __future__ import annotations

import platform

import pytest

from bitexact_testing import MMAP_THRESHOLD, encode_in_child, moving_frames
from fresh_process import run_fresh
from vanish.nodes.ops import video_encode as ve

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="filling the heap with a chosen byte needs glibc's MALLOC_PERTURB_")
def test_bitexact_bytes_do_not_depend_on_what_the_heap_held(tmp_path, monkeypatch):
    # 960 px = 60 macroblocks (not a multiple of 8): where libx264's uninitialised read shows
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    written = []
    for fill in (0x11, 0xEE):
        monkeypatch.setenv("MALLOC_PERTURB_", str(fill))
        path = tmp_path / f"heap_{fill:02x}.mp4"
        code, text = run_fresh(encode_in_child, str(path), "h264-mp4", 960, 360, 10)
        assert code == 0 and text is not None, f"the child encoding with MALLOC_PERTURB_={fill} failed ({code})"
        written.append(path.read_bytes())
    assert written[0] == written[1]


def x264_settings(path) -> str:
    """The settings libx264 writes into its stream (an SEI message: ``... options: cabac=1 ...``)."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    return data[start:data.index(b"\x00", start)].decode("ascii")


def test_only_the_bitexact_path_turns_the_macroblock_tree_off(tmp_path):
    frames = moving_frames(4, 64, 96)
    plain = ve.encode_video(tmp_path / "plain.mp4", frames, 25.0, "h264-mp4")
    exact = ve.encode_video(tmp_path / "exact.mp4", frames, 25.0, "h264-mp4", bitexact=True)
    assert " mbtree=1 " in x264_settings(plain) and " bframes=3 " in x264_settings(plain)  # Save Video as before
    assert " mbtree=0 " in x264_settings(exact) and " bframes=3 " in x264_settings(exact)
