"""Weights-free effects masks: the shadow and reflection an object casts, found in the video.

Stages: :mod:`.background` (aligned-neighbour median), :mod:`.shadow` (ratio test),
:mod:`.reflection` (mirror about the contact line), :mod:`.temporal` (reach and motion),
:mod:`.quadmask` (VOID's four-level mask), :mod:`.sam2_refine` (a SAM 2 prompt from the found
region), :mod:`.preview` (the node's preview); :mod:`.detect` runs them on a window or a whole
clip (see its docstring for the temporal context a window needs).
"""
from __future__ import annotations

from .detect import (EFFECT_KINDS, EffectsCancelled, EffectsSettings, context_frames, find_effects,
                     find_effects_window)
from .quadmask import QUAD_AFFECTED, QUAD_KEEP, QUAD_OBJECT, QUAD_OVERLAP, quadmask

__all__ = ["EFFECT_KINDS", "EffectsCancelled", "EffectsSettings", "context_frames", "find_effects",
           "find_effects_window", "QUAD_AFFECTED", "QUAD_KEEP", "QUAD_OBJECT", "QUAD_OVERLAP", "quadmask"]
