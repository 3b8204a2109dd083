"""Outputs that appear atomically: write under a hidden name, then publish without replacing.

House rule: nothing the user had is overwritten, and an output appears whole or not at all. A
writer (the encoder, the PNG-sequence writer) writes to :func:`partial_path`, a hidden name beside
the final one; a player or file watcher never sees a growing file under the final name, and a crash
leaves only the hidden ``.partial``. Once the writer has finished, :func:`publish_new` gives the
result its final name, and only if that name is still free:

* a file: ``os.link`` creates the final name and fails if it exists (no check-then-rename race),
  then the hidden name is unlinked. File systems without hard links (FAT, exFAT, some network
  shares) fall back to a rename after an existence check.
* a folder (PNG sequence): a rename after an existence check (folders cannot be hard-linked).

:func:`publish_first_free` moves on to the writer's next free name while the one tried is taken.

ComfyUI-free: Save Video (``nodes/video_io.py``) and the streaming engine (``nodes/engine/output.py``)
both use it.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)

KEY_LENGTH = 12
"""Characters of the key kept in a partial name: enough that two writers never share one."""
MAX_NAME_BYTES = 255
"""Longest file or folder name (bytes) on the common file systems (ext4, NTFS, APFS)."""


def new_key() -> str:
    """A random key for :func:`partial_path` when the writer has no job key of its own."""
    return secrets.token_hex(KEY_LENGTH // 2)


def partial_path(target: Path, key: str) -> Path:
    """The temporary name a writer uses for ``target``: hidden, beside it, one per ``key``.

    ``.{target name}.vanish-{key}.partial``; the target's name is shortened (whole characters) when
    the result would pass :data:`MAX_NAME_BYTES`, so a target of the longest allowed name still
    has a partial (the key alone keeps partials apart).
    """
    tail = f".vanish-{key[:KEY_LENGTH]}.partial"
    room = MAX_NAME_BYTES - len(tail.encode("utf-8")) - 1  # 1: the leading dot
    name = target.name.encode("utf-8")[:room].decode("utf-8", "ignore")  # a cut character is dropped
    return target.with_name(f".{name}{tail}")


def remove_partial(path: Path) -> None:
    """Remove a temporary output (a file, or a PNG-sequence folder); a missing one is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink(missing_ok=True)
        except PermissionError as exc:  # Windows: an encoder thread still has it open, and removes it
            logger.warning("could not remove %s now: %s", path, exc)


def is_taken(path: Path) -> bool:
    """Something holds the name ``path``: a file, a folder, or a link (a dangling link is a name the
    user has, too)."""
    return path.exists() or path.is_symlink()


def publish_new(partial: Path, target: Path) -> bool:
    """Give the finished ``partial`` the name ``target`` unless that name is taken.

    Returns:
        True: ``target`` now holds the output and ``partial`` is gone. False: ``target`` exists
        (made by someone else meanwhile); nothing was touched and ``partial`` is still there.
    Raises:
        OSError: the rename or link failed for another reason (permissions, disk).
    """
    if partial.is_dir() and not partial.is_symlink():
        return _rename_if_free(partial, target)
    try:
        os.link(partial, target)  # fails if the name is taken: no check-then-rename race
    except FileExistsError:
        return False
    except OSError as exc:  # a file system without hard links
        logger.debug("no hard link for %s (%s); renaming after a check", target, exc)
        return _rename_if_free(partial, target)
    try:
        partial.unlink()
    except OSError as exc:  # the output is in place under its name; only a hidden leftover stays
        logger.warning("published %s but could not remove %s: %s", target, partial, exc)
    return True


def publish_first_free(partial: Path, target: Path, next_name: Callable[[Path], Path] | None = None,
                       attempts: int = 100) -> Path | None:
    """:func:`publish_new` under ``target``, or, while the name tried is taken, under
    ``next_name(taken)`` (a writer's next free name: another save took this one meanwhile).

    Returns:
        The name the output now has; None when every name tried (``attempts`` at most; only
        ``target`` without ``next_name``) was taken, ``partial`` then still there.
    Raises:
        OSError: as :func:`publish_new`.
    """
    candidate = target
    for _attempt in range(attempts):
        if publish_new(partial, candidate):
            return candidate
        if next_name is None:
            return None
        logger.info("%s was taken while the output was written; trying the next name", candidate)
        candidate = next_name(candidate)
    return None


def _rename_if_free(partial: Path, target: Path) -> bool:
    if is_taken(target):
        return False
    try:
        os.rename(partial, target)
    except FileExistsError:  # Windows refuses to rename onto an existing name
        return False
    except OSError:
        # POSIX renames a folder onto an existing empty folder; onto a non-empty one or a file it
        # fails: where the name was taken between the check and the rename, say so.
        if is_taken(target) and is_taken(partial):
            return False
        raise
    return True
