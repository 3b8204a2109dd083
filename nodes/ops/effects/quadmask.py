"""The "quadmask" of the VOID model (object / overlap / affected area / keep), as core expects it.

ComfyUI core's ``comfy_extras/nodes_void.py`` (``VOIDQuadmaskPreprocess``, read at
comfyanonymous/ComfyUI commit 349c5aa) takes a MASK holding four grey levels on a 0..255 scale
(a 0..1 mask is multiplied by 255 first), quantises them (``<= 31`` -> 0, ``32..95`` -> 63,
``96..191`` -> 127, ``> 191`` -> 255) and inverts them to 1.0 / 0.75 / 0.5 / 0.0 for
``VOIDInpaintConditioning``:

====================  ================  ========================
level (0..255)        MASK value        meaning
====================  ================  ========================
0                     0.0               the object to remove
63                    63/255            object and affected area overlap
127                   127/255           affected area (its shadow, reflection)
255                   1.0               keep
====================  ================  ========================

Vanish's effects are found outside the object, so "overlap" is where the object mask and the
raw effects mask (before the object is cut out of it, e.g. SAM 2's effects object) both hold.
"""
from __future__ import annotations

import torch

QUAD_OBJECT = 0.0
QUAD_OVERLAP = 63.0 / 255.0
QUAD_AFFECTED = 127.0 / 255.0
QUAD_KEEP = 1.0


def quadmask(obj: torch.Tensor, effects: torch.Tensor) -> torch.Tensor:
    """The VOID quadmask ``[T, H, W]`` float32 from bool-like object and effects masks.

    Args:
        obj: ``[T, H, W]``, > 0.5 = object. effects: ``[T, H, W]``, > 0.5 = affected area
            (may overlap the object).
    """
    o, e = obj > 0.5, effects > 0.5
    out = torch.full(o.shape, QUAD_KEEP, dtype=torch.float32)
    out[e] = QUAD_AFFECTED
    out[o] = QUAD_OBJECT
    out[o & e] = QUAD_OVERLAP
    return out
