"""ProPainter's InpaintGenerator: image propagation, feature propagation, sparse transformer."""
from __future__ import annotations

from .config import GeneratorConfig
from .image_propagation import PropagationResult, propagate_images
from .network import InpaintGenerator, build_generator

__all__ = ["GeneratorConfig", "InpaintGenerator", "PropagationResult", "build_generator", "propagate_images"]
