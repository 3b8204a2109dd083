"""Cancel checks inside the networks, so that a cancel lands within one layer, not one chunk.

A chunk of a stage can be long: RAFT over a short clip is a single chunk (all frame pairs, 20
refinement steps each), and one generator window at a large size runs for seconds on a CPU. The
loops of the stages poll the cancel callable between chunks; :func:`cancel_checks` adds a
forward pre-hook on every submodule of the networks for the duration of a run, so the same
callable is polled before every layer (each RAFT refinement step, each propagation step of flow
completion and of the generator, each transformer block). The hooks are removed afterwards, so
the networks are left exactly as they came.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from torch import nn

#: Raises :class:`~propainter_core.pipeline.errors.Cancelled` when the caller asked to stop.
CancelCheck = Callable[[], None]


@contextmanager
def cancel_checks(networks: Iterable[nn.Module], check: CancelCheck | None) -> Iterator[None]:
    """Call ``check()`` before the forward of every submodule of ``networks`` inside the block.

    Args:
        networks: the modules to watch (every submodule of each is hooked once).
        check: raises to stop the run; None installs nothing.
    """
    if check is None:
        yield
        return

    def hook(_module: nn.Module, _args: tuple) -> None:
        check()

    seen: set[int] = set()
    handles = []
    for network in networks:
        for module in network.modules():
            if id(module) not in seen:
                seen.add(id(module))
                handles.append(module.register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
