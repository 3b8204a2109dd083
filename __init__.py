"""Vanish — remove objects from video inside ComfyUI.

ComfyUI imports this folder as a module named after the folder and reads the three names
below. Importing it has no other side effect: nodes register their server routes and model
folders lazily through ``nodes._comfy``.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
