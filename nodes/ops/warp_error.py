"""Temporal consistency of a video: the warp error, and the optical flow it needs.

ComfyUI-free. Definition (Lai et al., ECCV 2018, over the filled region)::

    E_warp = (1 / |Ω|) Σ_t Σ_{p ∈ Ω_t} ‖ I'_{t+1}(p) − I'_t(p + B_t(p)) ‖²,   Ω_t = M_t ∩ M_{t+1} ∩ V_t

* ``I'`` are the frames in 0..1 and ``‖·‖²`` is the squared RGB distance (summed over the three
  channels), so a pixel contributes 0 (identical) to 3 (black vs white).
* ``B_t = F_{t+1→t}`` is the backward flow: pixel ``p`` of frame ``t+1`` came from ``p + B_t(p)``
  in frame ``t``. ``I'_t(p + B_t(p))`` is ``I'_t`` warped into frame ``t+1`` (bilinear; exact for
  whole-pixel flows).
* ``M_t`` is the mask binarised at 0.5 (or every pixel for the whole-frame variant); ``V_t`` keeps
  pixels whose source lies inside the frame and, with the occlusion check, whose flow passes the
  forward-backward test (Sundaram et al. 2010) against ``F_{t→t+1}``.
* ``|Ω| = Σ_t |Ω_t|``: the mean weights every counted pixel equally; per-frame values are
  ``e_t / |Ω_t|``. A clip of one frame, or pairs with nothing counted, give no value (``None``)
  and a mean of 0.0.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
import torch

from .mask_ops import dilate, erode

# parity: the forward-backward tolerances of Sundaram et al. 2010, the same as ProPainter's
# model/propainter.py:22 check (alpha1 scales with the flow, alpha2 in squared pixels).
FB_ALPHA1 = 0.01
FB_ALPHA2 = 0.5
MASK_THRESHOLD = 0.5
PIXEL_SCALE = "0..1 pixel values; squared RGB distance summed over channels (0 = identical, 3 = max)"

FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _farneback(prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
    # pyramid scale, levels, window, iterations, poly_n, poly_sigma: OpenCV's documented example values
    return cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, 0.5, 5, 15, 3, 5, 1.2, 0)


def _dis(prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(prev_gray, next_gray, None)


# Flow estimators by name: uint8 greyscale [H, W] pair -> [H, W, 2] float32 (x, y) in pixels.
# A RAFT estimator can be added with register_flow_method("raft", fn).
FLOW_METHODS: dict[str, FlowFunction] = {"dis": _dis, "farneback": _farneback}


FLOW_MIN_SIZE: dict[str, int] = {"dis": 16}
"""Smallest width and height each flow method takes. OpenCV's DIS raises a bare cv2.error under
12 px and, worse, kills the process (segmentation fault) on wide frames 12-15 px high, e.g.
40x12; every tried size with both sides >= 16 was clean (``bench/flow_min_size.py``, each size in
a fresh process; bench/RESULTS.md, issue 11). Farneback took every size down to 1x1."""


class FrameTooSmall(ValueError):
    """The frames are smaller than the flow method takes (see :data:`FLOW_MIN_SIZE`)."""

    def __init__(self, method: str, width: int, height: int) -> None:
        self.method, self.size, self.minimum = method, (width, height), FLOW_MIN_SIZE[method]
        super().__init__(f"the {method} flow needs frames of at least {self.minimum}x{self.minimum}; "
                         f"these are {width}x{height}")


def check_flow_size(method: str, width: int, height: int) -> None:
    """Raise :class:`FrameTooSmall` before OpenCV sees a size that breaks ``method``."""
    minimum = FLOW_MIN_SIZE.get(method, 1)
    if width < minimum or height < minimum:
        raise FrameTooSmall(method, width, height)


def register_flow_method(name: str, function: FlowFunction) -> None:
    """Add a flow estimator (e.g. RAFT) that :func:`estimate_flow` and the node can use."""
    FLOW_METHODS[name] = function


def _to_gray_uint8(frame: torch.Tensor | np.ndarray) -> np.ndarray:
    array = frame.detach().float().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(array)


def estimate_flow(prev: torch.Tensor | np.ndarray, next: torch.Tensor | np.ndarray,
                  method: str = "dis") -> np.ndarray:
    """Optical flow from ``prev`` to ``next`` with OpenCV.

    Args:
        prev, next: ``[H, W, 3]`` RGB in 0..1 (float, torch or numpy) or uint8; ``[H, W]`` grey also works.
        method: a key of :data:`FLOW_METHODS` ("dis", "farneback").
    Returns:
        ``[H, W, 2]`` float32: ``prev(p) ≈ next(p + flow(p))``, channel 0 = x, 1 = y, in pixels.
    Raises:
        FrameTooSmall: the frames are below :data:`FLOW_MIN_SIZE` for ``method``.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; expected one of {sorted(FLOW_METHODS)}")
    prev_gray, next_gray = _to_gray_uint8(prev), _to_gray_uint8(next)
    check_flow_size(method, prev_gray.shape[1], prev_gray.shape[0])
    return FLOW_METHODS[method](prev_gray, next_gray).astype(np.float32)


def sample_bilinear(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``p + flow(p)``; exact at whole-pixel positions.

    Args:
        image: ``[H, W, C]``. flow: ``[H, W, 2]`` (x, y) in pixels.
    Returns:
        ``[H, W, C]`` samples and ``[H, W]`` bool: the position lies inside the frame.
    """
    height, width = image.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype, device=flow.device),
                            torch.arange(width, dtype=flow.dtype, device=flow.device), indexing="ij")
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    x0 = x.floor().clamp(0, width - 1)
    y0 = y.floor().clamp(0, height - 1)
    wx, wy = (x.clamp(0, width - 1) - x0).unsqueeze(-1), (y.clamp(0, height - 1) - y0).unsqueeze(-1)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
    flat = image.reshape(height * width, -1)  # [H*W, C]

    def at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return flat.index_select(0, (rows * width + cols).reshape(-1)).reshape(height, width, -1)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy, inside


def consistent_flow(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Forward-backward check for the pixels of frame ``t+1``.

    ``b = backward(p)`` takes ``p`` to frame ``t``; ``f = forward(p + b)`` should bring it back:
    ``|b + f|² < FB_ALPHA1 (|b|² + |f|²) + FB_ALPHA2``.

    Args:
        backward: ``[H, W, 2]`` flow t+1 → t. forward: ``[H, W, 2]`` flow t → t+1.
    Returns:
        ``[H, W]`` bool.
    """
    forward_at_source, _ = sample_bilinear(forward, backward)
    round_trip = (backward + forward_at_source).square().sum(-1)
    scale = backward.square().sum(-1) + forward_at_source.square().sum(-1)
    return round_trip < FB_ALPHA1 * scale + FB_ALPHA2


@dataclass
class WarpErrorResult:
    """What :func:`warp_error` measured. Pair ``t`` compares frame ``t+1`` with frame ``t`` warped."""

    mean: float
    per_frame: list[float | None]
    pixels: list[int]
    worst_pair: int | None = None
    worst_map: np.ndarray | None = None          # [H, W] squared error of the worst pair, 0 where not counted
    seam: list[float | None] = field(default_factory=list)
    seam_mean: float | None = None

    def to_json(self) -> str:
        """The figures as JSON (``per_frame[t]`` = pair t → t+1; ``null`` = nothing counted)."""
        return json.dumps({"mean": self.mean, "per_frame": self.per_frame, "pixels": self.pixels,
                           "worst_pair": self.worst_pair, "seam": self.seam or None,
                           "seam_mean": self.seam_mean, "scale": PIXEL_SCALE})


def _region(masks: torch.Tensor | None, t: int, shape: tuple[int, int]) -> torch.Tensor:
    if masks is None:
        return torch.ones(shape, dtype=torch.bool)
    return (masks[t] > MASK_THRESHOLD) & (masks[t + 1] > MASK_THRESHOLD)


def warp_error_from_flows(frames: torch.Tensor, masks: torch.Tensor | None, flows_backward: torch.Tensor,
                          flows_forward: torch.Tensor | None = None) -> WarpErrorResult:
    """The warp error with flows supplied by the caller (see the module docstring).

    Args:
        frames: ``[T, H, W, 3]`` in 0..1. masks: ``[T, H, W]`` or None for the whole frame.
        flows_backward: ``[T-1, H, W, 2]``, entry t = flow from frame t+1 to frame t.
        flows_forward: ``[T-1, H, W, 2]``, entry t = flow t → t+1; given, it enables the
            occlusion check.
    """
    pairs = ((flows_backward[t], None if flows_forward is None else flows_forward[t])
             for t in range(frames.shape[0] - 1))
    return _measure(frames, masks, pairs)


def _measure(frames: torch.Tensor, masks: torch.Tensor | None,
             pairs: Iterable[tuple[torch.Tensor, torch.Tensor | None]]) -> WarpErrorResult:
    """Accumulate the warp error pair by pair (flows arrive one pair at a time, never all at once)."""
    frames = frames.detach().float().cpu()
    masks = None if masks is None else masks.detach().float().cpu()
    per_frame: list[float | None] = []
    pixels: list[int] = []
    total_error, total_pixels = 0.0, 0
    worst: tuple[float, int, np.ndarray] | None = None
    for t, (backward, forward) in enumerate(pairs):
        backward = backward.detach().float().cpu()
        warped, counted = sample_bilinear(frames[t], backward)  # [H, W, 3], [H, W]
        counted &= _region(masks, t, frames.shape[1:3])
        if forward is not None:
            counted &= consistent_flow(backward, forward.detach().float().cpu())
        error_map = (frames[t + 1] - warped).square().sum(-1) * counted  # [H, W]
        count = int(counted.sum())
        error = float(error_map.double().sum())
        pixels.append(count)
        per_frame.append(error / count if count else None)
        total_error, total_pixels = total_error + error, total_pixels + count
        if count and (worst is None or error / count > worst[0]):
            worst = (error / count, t, error_map.numpy())
    return WarpErrorResult(mean=total_error / total_pixels if total_pixels else 0.0, per_frame=per_frame,
                           pixels=pixels, worst_pair=None if worst is None else worst[1],
                           worst_map=None if worst is None else worst[2])


def seam_error(frame: torch.Tensor, mask: torch.Tensor, width: int,
               check: Callable[[], None] | None = None) -> float | None:
    """Gradient excess on the mask boundary: how much sharper the seam is than its surroundings.

    ``mean ‖∇I‖²`` on the boundary band (1 pixel each side of the mask edge) minus ``mean ‖∇I‖²``
    on the ring 2..``width``+1 pixels outside the mask (central differences, 0..1 scale).
    About 0 for a seamless fill, positive for a visible seam. None without a boundary or ring.

    Args:
        frame: ``[H, W, 3]``. mask: ``[H, W]``.
        check: raises to stop; polled at every step of the ring's dilation.
    """
    selected = (mask > MASK_THRESHOLD).float()[None]  # [1, H, W]
    band = (dilate(selected, 1, "square") > 0) & ~(erode(selected, 1, "square") > 0)
    ring = (dilate(selected, width + 1, "disk", check) > 0) & ~(dilate(selected, 1, "square") > 0)
    if not bool(band.any()) or not bool(ring.any()):
        return None
    padded = torch.nn.functional.pad(frame.permute(2, 0, 1)[None], (1, 1, 1, 1), mode="replicate")[0]  # [3, H+2, W+2]
    grad_x = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) * 0.5
    grad_y = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) * 0.5
    energy = (grad_x.square() + grad_y.square()).sum(0)  # [H, W]
    return float(energy[band[0]].mean() - energy[ring[0]].mean())


def warp_error(frames: torch.Tensor, masks: torch.Tensor | None = None, *, flow_method: str = "dis",
               flow_frames: torch.Tensor | None = None, occlusion_check: bool = True,
               seam_width: int = 0, whole_frame: bool = False,
               on_pair: Callable[[int], None] | None = None,
               check: Callable[[], None] | None = None) -> WarpErrorResult:
    """Estimate flows with OpenCV and measure the warp error (see the module docstring).

    Args:
        frames: ``[T, H, W, 3]`` 0..1, the video to judge (e.g. the composite).
        masks: ``[T, H, W]`` region to judge (binarised at 0.5), or None for the whole frame.
        flow_method: a key of :data:`FLOW_METHODS`.
        flow_frames: ``[T, H, W, 3]`` frames to estimate the flow on (e.g. the originals);
            None = ``frames`` themselves.
        occlusion_check: drop pixels whose forward and backward flows disagree.
        seam_width: > 0 also measures :func:`seam_error` per frame (needs ``masks``).
        whole_frame: judge every pixel even though ``masks`` is given (masks then serve the seam only).
        on_pair: called with the pair index after each flow estimate (progress, cancel).
        check: raises to stop; called before each flow estimate and each frame's seam measurement.
    """
    frames = frames.detach().float().cpu()
    source = frames if flow_frames is None else flow_frames.detach().float().cpu()

    def flows() -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        for t in range(frames.shape[0] - 1):
            if check is not None:
                check()
            backward = torch.from_numpy(estimate_flow(source[t + 1], source[t], flow_method))
            if check is not None and occlusion_check:
                check()
            forward = torch.from_numpy(estimate_flow(source[t], source[t + 1], flow_method)) \
                if occlusion_check else None
            if on_pair is not None:
                on_pair(t)
            yield backward, forward

    result = _measure(frames, None if whole_frame else masks, flows())
    if seam_width > 0 and masks is not None:
        result.seam = []
        for t in range(frames.shape[0]):
            if check is not None:
                check()
            result.seam.append(seam_error(frames[t], masks[t].detach().float().cpu(), seam_width, check))
        measured = [value for value in result.seam if value is not None]
        result.seam_mean = float(np.mean(measured)) if measured else None
    return result


# --------------------------------------------------------------------------- report image
PLOT_WIDTH = 640
PLOT_HEIGHT = 220
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 70, 20, 30, 30
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], color=(230, 230, 230), scale: float = 0.45) -> None:
    cv2.putText(canvas, text, origin, _FONT, scale, color, 1, cv2.LINE_AA)


def _plot_panel(result: WarpErrorResult) -> np.ndarray:
    """Line plot of the per-pair warp error, ``[PLOT_HEIGHT, PLOT_WIDTH, 3]`` uint8 RGB."""
    canvas = np.full((PLOT_HEIGHT, PLOT_WIDTH, 3), 24, dtype=np.uint8)
    left, right = _MARGIN_LEFT, PLOT_WIDTH - _MARGIN_RIGHT
    top, bottom = _MARGIN_TOP, PLOT_HEIGHT - _MARGIN_BOTTOM
    cv2.rectangle(canvas, (left, top), (right, bottom), (110, 110, 110), 1)
    _text(canvas, f"warp error per frame pair   mean {result.mean:.5g}   (0..1 RGB, squared)", (8, 18))
    values = [v for v in result.per_frame if v is not None]
    if not values:
        _text(canvas, "nothing to measure (one frame, or no counted pixels)", (left + 10, (top + bottom) // 2))
        return canvas
    peak = max(max(values) * 1.1, 1e-12)
    count = len(result.per_frame)
    _text(canvas, f"{peak:.3g}", (6, top + 10), scale=0.4)
    _text(canvas, "0", (6, bottom), scale=0.4)
    _text(canvas, "0", (left, bottom + 18), scale=0.4)
    _text(canvas, f"{count - 1}", (right - 24, bottom + 18), scale=0.4)

    def point(index: int, value: float) -> tuple[int, int]:
        x = left + (right - left) * (index / max(count - 1, 1))
        return int(round(x)), int(round(bottom - (bottom - top) * value / peak))

    previous = None
    for index, value in enumerate(result.per_frame):
        if value is None:
            previous = None
            continue
        current = point(index, value)
        if previous is not None:
            cv2.line(canvas, previous, current, (80, 180, 255), 2, cv2.LINE_AA)
        cv2.circle(canvas, current, 2, (80, 180, 255), -1, cv2.LINE_AA)
        previous = current
    if result.worst_pair is not None:
        cv2.circle(canvas, point(result.worst_pair, result.per_frame[result.worst_pair] or 0.0), 5,
                   (255, 60, 60), 2, cv2.LINE_AA)
    return canvas


def _heat_panel(result: WarpErrorResult, frame: torch.Tensor) -> np.ndarray | None:
    """The worst pair's error map as a heat map over frame ``worst_pair + 1`` (grey), width PLOT_WIDTH."""
    if result.worst_map is None or result.worst_pair is None:
        return None
    error_map = result.worst_map
    grey = _to_gray_uint8(frame)
    base = np.repeat(grey[..., None], 3, axis=2)
    scaled = np.clip(error_map / max(float(error_map.max()), 1e-12) * 255.0, 0, 255).astype(np.uint8)
    heat = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    counted = (error_map > 0)[..., None]
    blended = np.where(counted, (0.3 * base + 0.7 * heat).astype(np.uint8), base // 2)
    height = max(int(round(blended.shape[0] * PLOT_WIDTH / blended.shape[1])), 1)
    panel = cv2.resize(blended, (PLOT_WIDTH, height), interpolation=cv2.INTER_AREA)
    banner = np.full((24, PLOT_WIDTH, 3), 24, dtype=np.uint8)
    _text(banner, f"worst pair {result.worst_pair}->{result.worst_pair + 1}: "
                  f"{result.per_frame[result.worst_pair]:.5g} (heat scaled to its max {error_map.max():.3g})", (8, 17))
    return np.concatenate([banner, panel], axis=0)


def render_report(result: WarpErrorResult, frames: torch.Tensor) -> np.ndarray:
    """The plot of error per pair above a heat map of the worst pair.

    Args:
        frames: ``[T, H, W, 3]`` the measured frames (the heat map is drawn over one of them).
    Returns:
        ``[h, PLOT_WIDTH, 3]`` uint8 RGB.
    """
    panels = [_plot_panel(result)]
    if result.worst_pair is not None:
        heat = _heat_panel(result, frames[result.worst_pair + 1])
        if heat is not None:
            panels.append(heat)
    return np.concatenate(panels, axis=0)
