"""Combo values are checked on every call, not only by ComfyUI's frontend.

ComfyUI checks a COMBO input against its list when a prompt is queued, but a node called from a
script, a test, or an API client that skips validation gets whatever string it is sent. SAM 2
Propagate then took ``direction="sideways"`` and returned all-zero masks. :func:`check_combos`
compares every COMBO input of a node with the list in its ``INPUT_TYPES``; :func:`install` makes
every node's ``FUNCTION`` call it first (done once for the whole pack in ``nodes/__init__.py``).

File lists (an upload widget, models in a folder) are not checked here: the list is what is on
disk now, and those nodes resolve the name themselves with an error that says which file is
missing and where to put it.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any

from ._errors import VanishError

FILE_COMBOS: dict[str, frozenset[str]] = {
    "VanishLoadVideoFrames": frozenset({"video"}),
    "VanishSAM2ModelLoader": frozenset({"checkpoint"}),
    "VanishProPainterModelLoader": frozenset({"raft", "flow_completion", "generator"}),
    "VanishRemoveObjectStreaming": frozenset({"video"}),
}
"""Per node id, the combos that list files (checked by the node when it opens the file)."""


def combo_choices(cls: type, skip: frozenset[str] = frozenset()) -> dict[str, list]:
    """``{input name: allowed values}`` for every COMBO input of ``cls`` (old and new syntax)."""
    spec = cls.INPUT_TYPES()
    combos: dict[str, list] = {}
    for section in ("required", "optional"):
        for name, decl in spec.get(section, {}).items():
            kind = decl[0] if isinstance(decl, (list, tuple)) and decl else decl
            options = decl[1] if isinstance(decl, (list, tuple)) and len(decl) > 1 else {}
            if name in skip:
                continue
            if isinstance(kind, (list, tuple)):
                combos[name] = list(kind)
            elif kind == "COMBO" and isinstance(options, dict) and "options" in options:
                combos[name] = list(options["options"])
    return combos


def check_combos(cls: type, node: str, values: dict[str, Any],
                 skip: frozenset[str] = frozenset()) -> None:
    """Raise :class:`VanishError` when a given COMBO value is not one of its choices.

    Args:
        cls: the node class. node: its display name (for the message).
        values: the call's arguments by input name; inputs not given are not checked (their
            defaults are valid).
    """
    for name, choices in combo_choices(cls, skip).items():
        if name not in values:
            continue
        value = values[name]
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise VanishError(node, name, f"is {value!r}, which is not one of its choices: {shown}.",
                              f"use one of {shown} (exact spelling; scripts and API clients send "
                              "the value itself, not its position).")


def install(cls: type, node: str, node_id: str) -> None:
    """Wrap ``cls``'s ``FUNCTION`` so every call checks the combo values first (idempotent)."""
    name = cls.FUNCTION
    method = getattr(cls, name)
    if getattr(method, "_vanish_combos_checked", False):
        return
    signature = inspect.signature(method)
    skip = FILE_COMBOS.get(node_id, frozenset())
    var_keyword = [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]

    @functools.wraps(method)
    def checked(self, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = dict(signature.bind_partial(self, *args, **kwargs).arguments)
        except TypeError:
            bound = kwargs  # let the call itself report the wrong arguments
        for key in var_keyword:  # widgets a node takes through **options are checked too
            bound.update(bound.pop(key, None) or {})
        check_combos(cls, node, bound, skip)
        return method(self, *args, **kwargs)

    checked._vanish_combos_checked = True  # type: ignore[attr-defined]
    setattr(cls, name, checked)


def install_all(mappings: dict[str, type], display_names: dict[str, str]) -> None:
    """:func:`install` on every node of the pack."""
    for node_id, cls in mappings.items():
        install(cls, display_names.get(node_id, node_id), node_id)

