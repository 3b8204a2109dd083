"""The Effects Mask node's preview: the object's outline in red, the effects tinted cyan."""
from __future__ import annotations

import torch
import torch.nn.functional as F

OUTLINE_RGB = (1.0, 0.15, 0.15)
EFFECTS_RGB = (0.0, 0.9, 1.0)
EFFECTS_OPACITY = 0.55


def outline(masks: torch.Tensor) -> torch.Tensor:
    """``[T, H, W]`` bool: mask pixels with a 4-neighbour outside the mask (1 px inner edge)."""
    m = masks.float().unsqueeze(1)  # [T, 1, H, W]
    eroded = -F.max_pool2d(-F.pad(m, (1, 1, 1, 1), value=1.0), 3, stride=1)  # [T, 1, H, W]
    return (m > 0.5)[:, 0] & (eroded < 0.5)[:, 0]


def effects_preview(images: torch.Tensor, objects: torch.Tensor, effects: torch.Tensor) -> torch.Tensor:
    """IMAGE ``[T, H, W, 3]`` (CPU float32) from frames ``[T, H, W, 3]`` and bool masks ``[T, H, W]``."""
    out = images.detach().to("cpu", torch.float32).clone()
    cyan, red = torch.tensor(EFFECTS_RGB), torch.tensor(OUTLINE_RGB)
    for t in range(out.shape[0]):  # frame by frame: no [T, H, W, 3] temporaries
        fx = effects[t]
        if bool(fx.any()):
            out[t][fx] = out[t][fx] * (1 - EFFECTS_OPACITY) + cyan * EFFECTS_OPACITY
        edge = outline(objects[t: t + 1])[0]
        out[t][edge] = red
    return out
