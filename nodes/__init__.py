"""The ComfyUI adapter layer: one module per pipeline stage, each with its own mappings.

Node ids (the keys of ``NODE_CLASS_MAPPINGS``) are stored in users' saved workflows: they
carry the ``Vanish`` prefix and are never renamed.
"""
from __future__ import annotations

from . import _validation, compositing, effects, inpainting, masks, metrics, segmentation, streaming, video_io

_STAGES = (video_io, segmentation, masks, effects, inpainting, compositing, metrics, streaming)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _stage in _STAGES:
    for _node_id in _stage.NODE_CLASS_MAPPINGS:
        if _node_id in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"Vanish: node id {_node_id!r} is registered twice")
    NODE_CLASS_MAPPINGS.update(_stage.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_stage.NODE_DISPLAY_NAME_MAPPINGS)
_validation.install_all(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS)  # combos checked per call

from . import routes as _routes

_routes.register()  # a no-op outside a running ComfyUI server
