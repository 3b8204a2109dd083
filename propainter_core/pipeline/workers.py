"""Independent work of a stage on single-threaded worker threads instead of one multi-threaded op
after another.

On the CPU every ATen op splits its work over the OpenMP threads and waits for all of them at the
end; libgomp's waiting threads spin before they sleep. Between the small ops of RAFT's refinement
and flow completion, and on a machine whose cores are shared, that waiting is CPU time that does
no work (issue 14, session 5: the same stage measured 23.5 and 30.1 CPU-s in two runs at 2
threads). The pipeline has work that is independent: RAFT's encoder calls and refinement batches,
the two directions of flow completion, the generator's windows. :class:`Workers` runs such work on
``count`` threads that each compute with one OpenMP thread: the arithmetic of every task is the
one-thread arithmetic, whichever worker runs it, and the results come back in the order the tasks
were given, so a run with two workers gives the same numbers as a sequential run at one thread.

ATen releases the GIL inside its ops, so the workers compute at the same time. Grad mode and CPU
autocast are thread-local in PyTorch: each task runs under the caller's settings of both.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, TypeVar

import torch

from .errors import InpaintInputError

T = TypeVar("T")
R = TypeVar("R")

#: ``"auto"``: two single-threaded workers on the CPU when the caller allows torch two threads or
#: more; sequential elsewhere. An int: that many workers (1 = sequential, at the caller's threads).
WorkersOption = Literal["auto"] | int

#: Workers that ``"auto"`` picks on a CPU with at least this many torch threads.
AUTO_WORKERS = 2


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
    """Run tasks on ``count`` single-threaded worker threads; ``count == 1`` runs them inline.

    Use as a context manager around a run. On leaving it, every task has finished or been dropped
    and the caller's torch thread count is set again (a worker setting its own count changes
    process-wide values too: MKL's thread count and the count new threads start with).

    Args:
        count: Worker threads (1: run every task in the calling thread, as a plain loop would).
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ThreadPoolExecutor | None = None
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
            self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="propainter-worker",
                                            initializer=torch.set_num_threads, initargs=(1,))
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._pool is None:
            return
        if error is not None:
            self._failed.set()  # running tasks stop at their next layer (see check)
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._pool = None
            torch.set_num_threads(self._threads)

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
        """``function()`` on one worker (so at one thread), or inline when sequential."""
        return list(self.map(lambda _: function(), [None]))[0]

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``function(item)`` for every item, results in the order of ``items``.

        At most ``count + 1`` tasks are queued or running at a time (one waits for the first
        worker that frees up), so results are not piling up. The first error of a task is
        raised here, after the other tasks stopped.
        """
        if self._pool is None:
            yield from map(function, items)
            return
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(self._pool.submit(self._task, function, item))
                if len(pending) > self.count:
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
