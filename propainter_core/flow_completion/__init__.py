"""Recurrent flow completion: fill optical flow inside the masked regions (ProPainter stage 2).

```python
net = build_flow_completion(FlowCompletionConfig())      # then load recurrent_flow_completion.pth
pred_f, pred_b = net.complete_bidirectional(flows_forward, flows_backward, masks)
completed_f, completed_b = combine_flows(flows_forward, flows_backward, pred_f, pred_b, masks)
```
"""
from __future__ import annotations

from .alignment import SecondOrderDeformableAlignment
from .config import FlowCompletionConfig
from .network import FlowPair, RecurrentFlowCompletion, build_flow_completion, combine_flows
from .propagation import BidirectionalPropagation

__all__ = [
    "BidirectionalPropagation",
    "FlowCompletionConfig",
    "FlowPair",
    "RecurrentFlowCompletion",
    "SecondOrderDeformableAlignment",
    "build_flow_completion",
    "combine_flows",
]
