"""The engine's two exceptions: bad input (:class:`EngineError`) and a user cancel (:class:`Cancelled`)."""
from __future__ import annotations

from .._errors import VanishError

#: What an engine error names as its "node" (the CLI and the streaming node catch and re-label it).
ENGINE = "Vanish engine"


class EngineError(VanishError):
    """Bad input or an environment problem, with the input it concerns and the fix.

    A ``VanishError`` (hence a ``ValueError``), so the nodes show it as they show their own:
    ``Vanish engine: input 'source' points to /x.mp4, which does not exist.\\nFix: ...``.
    """

    def __init__(self, input_name: str | None, problem: str, fix: str | None = None) -> None:
        super().__init__(ENGINE, input_name, problem, fix)

    def __reduce__(self):
        # pickled by its fields (Ray hands a task's error back to the driver; spawn children too)
        return (type(self), (self.input_name, self.problem, self.fix))


class Cancelled(Exception):
    """``should_cancel()`` returned True: the partial output was removed, the work folder kept."""
