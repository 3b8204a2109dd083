"""Weights-free video inpainting: DIS flow, flow completion, bidirectional propagation.

The same stages as ProPainter's flow-guided propagation, with classical parts instead of
networks, so object removal works without a GPU and without model files. One module per stage:

1. :mod:`.flow_completion` — OpenCV DIS flow between neighbouring frames, both directions
   (instead of RAFT); inside the hole the flow is replaced by the camera's motion around it
   (instead of the flow-completion network), and, where a thing moves on its own beside the
   hole, its own motion is continued into the hole too (for the hole pixels that hide it).
   Beside a sliding hole a pair cannot tell still ground from a moving thing (it compares with
   the other frame's smoothed-over hole): the frame's other pair decides
   (:func:`.flow_completion.unsure_layer`).
2. :mod:`.source_selection` — which pixel of another frame may stand in for a hole pixel.
3. :mod:`.propagation` — every hole pixel is traced along the completed flow, forward and
   backward, until it lands on a usable source; pixels whose trace along the moving thing's
   own motion lands on that thing again are its hidden part, and follow that motion.
   :mod:`.pair_match` moves a pixel's nearest forward and backward sources to where they show
   the same thing (a small bias of the completed flow carries the two traces opposite ways).
4. :mod:`.spatial_fill` — what no frame reveals is filled once and carried along the flow
   (never from a thing moving on its own in the previous frame), each pixel sampled where it
   was first filled rather than again from every frame on the way (which blurs it).
5. :mod:`.blending` — the fill is steadied along the motion and meets the frame without a seam.

:mod:`.pipeline` streams the clip through bounded windows, and runs the carried fill and the
steadying both ways in time and takes the mean. All arrays are numpy on the CPU;
frames are uint8 ``[T, H, W, 3]`` RGB, masks bool ``[T, H, W]`` with True = hole.
"""
from __future__ import annotations

from .blending import blend_with_previous, match_boundary
from .flow_completion import camera_flow, complete_flow, dis_flow, fit_camera
from .pipeline import finish_frame, flow_fill_inpaint, propagate_frame
from .settings import DisPreset, FlowFillSettings, InpaintCancelled, dilate_holes, working_bytes
from .spatial_fill import CarryHistory

__all__ = ["CarryHistory", "DisPreset", "FlowFillSettings", "InpaintCancelled", "blend_with_previous",
           "camera_flow", "complete_flow", "dilate_holes", "dis_flow", "finish_frame", "fit_camera",
           "flow_fill_inpaint", "match_boundary", "propagate_frame", "working_bytes"]
