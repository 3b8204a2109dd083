"""Helpers for the command-line tests: small clips on disk, and the CLI in a real child process.

:func:`cli_in_child` is the target of a ``multiprocessing`` spawn child: a fresh interpreter that
imports the pack as ``vanish`` (like ``__main__.py`` does), sends its output to a log file and exits
with the command's exit code, so a test can send it a real SIGINT.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_scene(folder: Path, frames: int, width: int = 96, height: int = 64) -> tuple[Path, Path]:
    """``folder/clip.mp4`` and ``folder/mask.mkv`` of the synthetic ball scene (folder created)."""
    from vanish.nodes.ops.synthetic_clip import SyntheticScene, write_clip

    folder.mkdir(parents=True, exist_ok=True)
    return write_clip(folder, SyntheticScene(frames, width, height))


def write_box_mask(path: Path, width: int, height: int, box: tuple[int, int, int, int]) -> Path:
    """One mask image (white box on black) used for every frame."""
    import cv2

    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    cv2.imwrite(str(path), mask)
    return path


def files_under(folder: Path) -> set[str]:
    """Every file and folder below ``folder`` (relative), to prove nothing was written."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def cli_in_child(argv: list[str], log_path: str, cwd: str) -> None:
    """Run ``main(argv)`` in this (spawned) process and exit with its code."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(cwd)
    if "vanish" not in sys.modules:
        spec = importlib.util.spec_from_file_location("vanish", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        pack = importlib.util.module_from_spec(spec)
        sys.modules["vanish"] = pack
        spec.loader.exec_module(pack)
    from vanish.nodes.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: the exit code is the command's
