"""Run a pack call in a fresh interpreter (``multiprocessing`` spawn), for cases that may kill
the process: the libx265 in PyAV's wheels corrupts the heap at some small frame sizes, and a
glibc abort inside pytest would end the whole test run instead of failing one test.

The child imports the pack the way the tests do (as the package ``vanish``), points the fake
ComfyUI folders at ``base_dir`` and returns what the call gave or raised, as text.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any


def _save_videos(base_dir: str, sizes: list[tuple[int, int]], fmt: str) -> list[str]:
    os.environ["VANISH_BASE_DIR"] = base_dir
    import conftest  # noqa: F401 - imports the pack as ``vanish``
    import torch

    from vanish.nodes import video_io

    node = video_io.NODE_CLASS_MAPPINGS["VanishSaveVideo"]()
    texts = []
    for width, height in sizes:
        frames = torch.rand(3, height, width, 3, generator=torch.Generator().manual_seed(0))
        try:
            result = node.save("small/clip", fmt, 19, 25.0, images=frames)
        except Exception as exc:  # noqa: BLE001 - the parent asserts on the text
            texts.append(f"{type(exc).__name__}: {exc}")
        else:
            texts.append(f"saved {result['result'][0]}")
    return texts


def _entry(connection, function, args) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # glibc's abort text; the exit code tells the parent
    connection.send(function(*args))
    connection.close()


def run_fresh(function, *args: Any) -> tuple[int, Any]:
    """``(exit code, what it returned or None)`` of ``function(*args)`` in a spawned child."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_entry, args=(send, function, args))
    process.start()
    send.close()
    try:
        text = receive.recv()
    except EOFError:
        text = None
    process.join()
    return process.exitcode, text


def save_videos_in_child(base_dir: str, sizes: list[tuple[int, int]], fmt: str
                         ) -> tuple[int, list[str] | None]:
    """Save Video of 3 random frames at each ``(width, height)`` in ``fmt``, in ONE fresh process
    (one interpreter start, since importing torch is the slow part); a text per size."""
    return run_fresh(_save_videos, base_dir, list(sizes), fmt)
