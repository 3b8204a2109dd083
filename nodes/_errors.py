"""The pack's one user-facing error type.

Every problem with what the user gave a node is raised as :class:`VanishError`, whose text
names the node, the input and what to do, e.g.::

    Composite Frames: input 'mask' has 12 frames but 'original' has 10.
    Fix: give one mask per frame, or a single mask to use for every frame.

ComfyUI shows the message in its error dialog; tests match on it.
"""
from __future__ import annotations


class VanishError(ValueError):
    """A clear, actionable error about one input of one node."""

    def __init__(self, node: str, input_name: str | None, problem: str, fix: str | None = None):
        self.node = node
        self.input_name = input_name
        self.problem = problem
        self.fix = fix
        where = f"{node}: input '{input_name}' " if input_name else f"{node}: "
        text = where + problem
        if fix:
            text += f"\nFix: {fix}"
        super().__init__(text)
