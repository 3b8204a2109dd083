"""Independent work of a stage on single-threaded worker threads instead of one multi-threaded op
after another.

On the CPU every ATen op splits its work over the OpenMP threads and waits for all of them at the
end; libgomp's waiting threads spin before they sleep. Between the small ops of RAFT's refinement
and flow completion, and on a machine whose cores are shared, that waiting is CPU time that does
no work (issue 14, session 5: the same stage measured 23.5 and 30.1 CPU-s in two runs at 2
threads). The pipeline has work that is independent: RAFT's encoder calls and refinement batches,
the generator's windows. :class:`Workers` runs such work on ``count`` threads that share the
caller's torch threads (each computes with ``threads // count`` OpenMP threads, at least one: on
a 2-core machine, one each). The arithmetic of every task is that of a sequential run at that
thread count, whichever worker runs it, and the results come back in the order the tasks were
given. Only RAFT runs on the workers by default: it is where they pay both ways (20 bmx-trees
frames at 432x240, idle machine: 79.1 -> 72.0 CPU-s, 39.9 -> 36.8 s; at load ~3: 104.3 -> 74.7
CPU-s, 94 -> 74 s), while the generator's big convolutions keep two threads busy, so work done
one task at a time runs inline at the caller's thread count (bench/RESULTS.md, issue 14 session 5).

ATen releases the GIL inside its ops, so the workers compute at the same time. Grad mode and CPU
autocast are thread-local in PyTorch: each task runs under the caller's settings of both.
"""
from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, TypeVar

import torch

from .errors import InpaintInputError

T = TypeVar("T")
R = TypeVar("R")

#: ``"auto"``: two workers on the CPU when the caller allows torch two threads or more (each with
#: half of them); sequential elsewhere. An int: that many workers (1 = sequential, at the caller's
#: threads).
WorkersOption = Literal["auto"] | int

#: Workers that ``"auto"`` picks on a CPU with at least this many torch threads.
AUTO_WORKERS = 2


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def return_freed_memory() -> bool:
    """Hand the pages the process has freed back to the system (glibc's ``malloc_trim``).

    glibc keeps freed blocks below its mmap threshold (up to 32 MB, so a frame-sized array) in
    its heaps, and holes between blocks in use keep them there: after a stage frees its working
    arrays the process's RSS stays where the stage left it, and what comes next adds to it.
    Returns False (and does nothing) without glibc.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class _Stopped(Exception):
    """Raised inside a task when another task failed: its result would be thrown away."""


def resolve_workers(option: WorkersOption, device: torch.device) -> int:
    """How many workers a run uses.

    Args:
        option: ``"auto"`` or a positive int.
        device: Where the networks are. Off the CPU, work is queued on the device already, so
            the run is sequential whatever ``option`` says.

    Raises:
        InpaintInputError: ``option`` is neither ``"auto"`` nor a positive int.
    """
    if option != "auto" and (isinstance(option, bool) or not isinstance(option, int) or option < 1):
        raise InpaintInputError(f"workers must be 'auto' or a positive int (1 = sequential), got {option!r}")
    if device.type != "cpu":
        return 1
    if option == "auto":
        return AUTO_WORKERS if torch.get_num_threads() >= AUTO_WORKERS else 1
    return option


class Workers:
    """Run tasks on ``count`` worker threads; ``count == 1`` runs them inline.

    Use as a context manager around a run. On leaving it, every task has finished or been dropped
    and the caller's torch thread count is set again (a worker setting its own count changes
    process-wide values too: MKL's thread count and the count new threads start with).

    Args:
        count: Worker threads (1: run every task in the calling thread, as a plain loop would).
            Each computes with ``torch.get_num_threads() // count`` threads (at least one), the
            caller's count when the block is entered.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pools: list[ThreadPoolExecutor] = []
        self._failed = threading.Event()
        self._threads = torch.get_num_threads()
        self._grad = torch.is_grad_enabled()
        self._autocast = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))

    @property
    def parallel(self) -> bool:
        return self.count > 1

    def __enter__(self) -> Workers:
        if self.parallel:
            self._threads = torch.get_num_threads()
            self._grad = torch.is_grad_enabled()
            self._autocast = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
            # One single-thread executor per worker, so that a task's worker is known: task i of a
            # map runs on worker i % at_once.
            self._pools = [ThreadPoolExecutor(1, thread_name_prefix=f"propainter-worker-{index}",
                                              initializer=torch.set_num_threads,
                                              initargs=(max(1, self._threads // self.count),))
                           for index in range(self.count)]
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self._pools:
            return
        if error is not None:
            self._failed.set()  # running tasks stop at their next layer (see check)
        try:
            for pool in self._pools:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._pools = []
            torch.set_num_threads(self._threads)

    def release_memory(self) -> None:
        """Hand the memory the workers freed back to the system (between stages).

        Each thread allocates from its own glibc malloc arena and keeps what it frees there for
        its own later use; the next stage, on another thread or with other sizes, cannot reuse
        it, and the process's peak RSS became the sum of the stages' peaks (20 frames at 432x240:
        2.17-2.28 GB against 1.72 sequentially). ``malloc_trim`` returns the free pages of every
        arena, so each stage starts from the memory still in use. A no-op when sequential or
        without glibc.
        """
        if self._pools:
            return_freed_memory()

    def check(self) -> None:
        """Raise inside a task once another task has failed (the pipeline calls this before every
        layer of the networks, with its cancel check), so that an error surfaces without waiting
        for the other workers' tasks to finish."""
        if self._failed.is_set():
            raise _Stopped("another worker failed")

    def _task(self, function: Callable[[T], R], item: T) -> R:
        enabled, dtype = self._autocast
        with torch.set_grad_enabled(self._grad), torch.autocast("cpu", dtype=dtype, enabled=enabled):
            return function(item)

    def call(self, function: Callable[[], R]) -> R:
        """``function()`` alone: inline, at the caller's thread count (see ``map``, ``at_once=1``)."""
        return function()

    def map(self, function: Callable[[T], R], items: Iterable[T], *,
            at_once: int | None = None) -> Iterator[R]:
        """``function(item)`` for every item, results in the order of ``items``.

        Task ``i`` runs on worker ``i % at_once`` (default ``count``), one task per worker at a
        time, so results do not pile up. The first error of a task is raised here, after the
        other tasks stopped.

        Work one task at a time (``at_once=1``: flow completion, the generator's windows) runs
        inline, in the calling thread at the caller's full thread count. On one worker thread
        it saved little CPU (the generator's big convolutions keep two threads busy: 80.3 ->
        74.8 CPU-s for 20 frames at 432x240 on an idle machine) and took 1.8 times the wall time
        (2.05 -> 3.74 s per frame), and on a many-core machine it would compute with half the
        threads. (Beside a busy process it is the other way round: 112 CPU-s and 5.59 s per frame
        at two threads, 77 and 3.98 at one; the default is chosen for a machine that runs the job.)
        """
        at_once = min(at_once or self.count, self.count)
        if not self._pools or at_once == 1:
            yield from map(function, items)
            return
        pending: deque[Future] = deque()
        try:
            for index, item in enumerate(items):
                pending.append(self._pools[index % at_once].submit(self._task, function, item))
                if len(pending) >= at_once:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except GeneratorExit:  # the caller stopped reading; if it failed, __exit__ stops the rest
            raise
        except BaseException:
            self._failed.set()
            raise
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    future.exception()  # wait for it; its error (_Stopped, mostly) is dropped


#: Every task inline, in the calling thread: the stages' default.
SEQUENTIAL = Workers(1)
