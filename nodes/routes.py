"""Placeholder: the /vanish/ server routes of the prompt editor are being written."""
from __future__ import annotations


def register() -> None:
    """Add the pack's routes to ComfyUI's PromptServer (no-op when there is none)."""
