"""Finish a new file on a worker thread while the caller keeps polling cancel.

After the last frame, ``video.encode(None)`` drains the encoder (x264/x265 lookahead and frame
threads) in one call, and :func:`.video_encode.check_decodes` then reads the file back. At 4K that
tail took 1.4-4 s here (bench/RESULTS.md, "Issue 11 follow-up (session 7)"), and a cancel made
during it was honoured only when it ended: past the house bound of 2 s. :func:`finish_file` runs the
tail on a worker thread (PyAV releases the GIL while the codec works, so the caller keeps running)
and waits in steps of :data:`POLL_INTERVAL_S`, calling the cancel hook at each step; Ctrl-C
(``KeyboardInterrupt``) also lands in that wait.

Ownership: the container and the file handle belong to the worker thread from the moment it
starts; the caller never touches them again (PyAV objects are not thread-safe). On cancel the
caller removes the file's name at once and raises; the thread stops draining after the packet in
hand (``write`` is told through its ``abandoned`` argument), closes the nameless file and ends.
Where an open file cannot be removed (Windows), the thread removes it once it has closed it.
Either way a name is removed at most once, so a file created later under the same name (the next
save takes the freed counter) is never touched.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import BinaryIO, Callable

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
"""How often the caller polls cancel while the thread finishes the file: a cancel lands within
this (plus the hook's own time), far inside the house bound of 2 s."""
THREAD_NAME = "vanish-encode-finish"


class _Tail:
    """The state the caller and the worker thread share, under one lock."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path, self.handle = path, handle
        self.done = threading.Event()
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._abandoned = False
        self._removed = False

    def abandoned(self) -> bool:
        return self._abandoned

    def run(self, write: Callable[[Callable[[], bool]], None], check: Callable[[], None]) -> None:
        """The worker thread: ``write`` (drain, close the container), close the handle, ``check``."""
        try:
            try:
                write(self.abandoned)
            finally:
                with self._lock:
                    self.handle.close()
            if not self._abandoned:
                check()
        except BaseException as exc:  # handed to the caller (or dropped when it has gone)
            self.failure = exc
        finally:
            with self._lock:
                if self._abandoned or self.failure is not None:
                    try:
                        self._remove()
                    except OSError as exc:
                        logger.warning("could not remove the abandoned file %s: %s", self.path, exc)
            self.done.set()

    def abandon(self) -> None:
        """The caller, on cancel: remove the name now where the system allows it."""
        with self._lock:
            self._abandoned = True
            try:
                self._remove()  # POSIX: the thread writes on into the nameless file
            except PermissionError:  # Windows keeps an open file's name: the thread removes it
                logger.debug("%s is removed once the encoder thread has closed it", self.path)

    def _remove(self) -> None:
        if not self._removed:
            self.path.unlink(missing_ok=True)
            self._removed = True


def finish_file(path: Path, handle: BinaryIO, write: Callable[[Callable[[], bool]], None],
                check: Callable[[], None], check_cancel: Callable[[], None] | None) -> None:
    """Run ``write``, close ``handle``, then run ``check``, on a worker thread; honour cancel meanwhile.

    Args:
        path: the NEW file this call created (removed on failure or cancel, never anything else).
        handle: its open handle; closed here in every case (by the thread).
        write: ``write(abandoned)`` does the rest of the writing (the encoder's drain, the remaining
            sound, the container's close); it must touch nothing the caller still uses, and may
            stop early once ``abandoned()`` is true (the file is removed anyway).
        check: the read-back check, run once the handle is closed (skipped after a cancel).
        check_cancel: called from the calling thread every :data:`POLL_INTERVAL_S`; it raises to
            cancel (ComfyUI's interrupt, the engine's ``Cancelled``). None: only Ctrl-C cancels.

    Raises:
        Whatever ``write``, ``check`` or ``check_cancel`` raise (``KeyboardInterrupt`` too); by then
        ``path`` is gone (on Windows, after a cancel: once the thread has closed it).
    """
    tail = _Tail(path, handle)
    thread = threading.Thread(target=tail.run, args=(write, check), name=THREAD_NAME, daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread can be started (resource limits): finish here, as before
        logger.warning("no thread for the encoder's finish; a cancel waits for it")
        tail.run(write, check)
    try:
        while not tail.done.wait(POLL_INTERVAL_S):
            if check_cancel is not None:
                check_cancel()
    except BaseException:
        tail.abandon()
        raise
    if tail.failure is not None:
        raise tail.failure
