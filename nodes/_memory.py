"""Refuse before running: a node that knows its output size checks it against the free RAM.

Linux hands out memory lazily, so a ``torch.empty`` far beyond the RAM succeeds and the process
is killed (taking ComfyUI down) only when the pages are written. Nodes whose outputs and working
copies are known from their inputs' shapes call :func:`require_ram` first, so the user gets a
clear error instead.
"""
from __future__ import annotations

from . import _comfy
from ._errors import VanishError

#: Share of the available RAM a node may plan to use (ComfyUI, the models and the OS need the rest).
RAM_HEADROOM = 0.9
GIB = 1024**3


def require_ram(node: str, needed_bytes: int, what: str, fix: str) -> None:
    """Raise a :class:`VanishError` when ``needed_bytes`` exceed the RAM available now.

    Args:
        node: the node's display name. needed_bytes: its estimate for this input.
        what: what needs the memory ("the masks and the preview of 150 frames at 960x540").
        fix: what the user can change.
    """
    available = _comfy.available_ram()
    if needed_bytes <= available * RAM_HEADROOM:
        return
    raise VanishError(node, None, f"{what} would take about {needed_bytes / GIB:.1f} GiB of RAM, but only "
                                  f"{available / GIB:.1f} GiB are available; refused before starting.", fix)
