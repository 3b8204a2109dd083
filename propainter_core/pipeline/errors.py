"""Exceptions the pipeline raises on purpose (input problems and cancellation)."""
from __future__ import annotations


class InpaintInputError(ValueError):
    """The frames, masks or settings given to :func:`propainter_core.inpaint` cannot be used.

    The message says what was given, what is needed and how to fix it.
    """


class Cancelled(RuntimeError):
    """``should_cancel()`` returned True; the pipeline stopped (between two layers at most)."""
