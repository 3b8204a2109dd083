"""Shared helpers of the flow_fill tests: small hand-made windows."""
from __future__ import annotations

import numpy as np

from vanish.nodes.ops.flow_fill.propagation import Window


def window_with_a_moving_layer(frames: np.ndarray, holes: np.ndarray, moving: np.ndarray, speed: float) -> Window:
    """A window whose background's completed flow is zero and whose moving layer moves ``speed`` px right per frame.

    ``frames [n, H, W, 3]`` float32, ``holes`` and ``moving [n, H, W]`` bool (the layer outside the
    holes is kept). The layer's own flow is ``speed`` everywhere, what complete_own_flow gives in
    the hole; the sources are the known pixels outside the layer.
    """
    n, h, w = holes.shape
    moving = moving & ~holes
    zero = np.zeros((n - 1, h, w, 2), np.float32)
    forward, backward = zero.copy(), zero.copy()
    forward[..., 0], backward[..., 0] = speed, -speed
    known = ~holes
    return Window(0, frames, known & ~moving, known, moving, zero, zero, forward, backward)
