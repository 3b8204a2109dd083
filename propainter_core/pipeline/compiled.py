"""Optional ``torch.compile`` of RAFT's refinement step, with a clean fallback.

Measured on the 2-core CPU (issue 14): compiling RAFT's update step gains little there (about
1.06x on the step after a compile of tens of seconds), so the pipeline never compiles by
itself; callers that run long clips on a machine with a working compiler (typically a GPU) may
opt in with :func:`compile_models`. Where compilation cannot run (no C++ compiler, an
unsupported platform or torch build, an error while tracing) the step runs uncompiled: one
warning is logged and the results are the eager ones.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from .models import ProPainterModels

logger = logging.getLogger(__name__)

Compiler = Callable[[Callable[..., Any]], Callable[..., Any]]


class CompiledOrEager:
    """Calls a compiled version of ``function``; on any failure, the function itself from then on.

    ``torch.compile`` is lazy (it compiles at the first call), so failures can come from
    ``compiler(function)`` or from any call; either way one warning names the part and the
    error, and the call is answered by the uncompiled function. The wrapped function must not
    change its inputs (a failed compiled call is run again uncompiled).

    Args:
        function: What to compile.
        name: The part's name, for the log line.
        compiler: ``torch.compile`` by default (``dynamic=False``).

    Attributes:
        compile_seconds: Wall seconds of the first compiled call (compilation included), or None.
        compiled: Whether calls still go to the compiled version.
    """

    def __init__(self, function: Callable[..., Any], name: str, compiler: Compiler | None = None) -> None:
        self._function = function
        self._name = name
        self.compile_seconds: float | None = None
        self._compiled: Callable[..., Any] | None = None
        try:
            self._compiled = (compiler or _torch_compile)(function)
        except Exception as error:  # noqa: BLE001 - any failure means: run uncompiled
            self._give_up(error)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is not None:
            start = time.perf_counter()
            try:
                result = self._compiled(*args, **kwargs)
            except Exception as error:  # noqa: BLE001
                self._give_up(error)
            else:
                if self.compile_seconds is None:
                    self.compile_seconds = time.perf_counter() - start
                    logger.info("compiled %s in %.1f s", self._name, self.compile_seconds)
                return result
        return self._function(*args, **kwargs)

    def _give_up(self, error: Exception) -> None:
        self._compiled = None
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        logger.warning("torch.compile is not available for %s (%s: %s); running it uncompiled",
                       self._name, type(error).__name__, first_line)


def _torch_compile(function: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(function, dynamic=False)


def compile_models(models: ProPainterModels, compiler: Compiler | None = None) -> ProPainterModels:
    """Compile RAFT's refinement step in place (weights and checkpoint keys are untouched).

    Results stay within the parity tolerances (the compiled step differs from the eager one by
    float summation order only). Calling it twice keeps the first wrapper.

    Args:
        models: From :func:`~propainter_core.load_models`.
        compiler: Replaces ``torch.compile`` (tests use it to make compilation fail).

    Returns:
        ``models``.
    """
    update = models.raft.update_block
    if not isinstance(update.__dict__.get("step"), CompiledOrEager):
        update.step = CompiledOrEager(update.step, "RAFT update step", compiler)
    return models
