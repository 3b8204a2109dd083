"""Spatial fill of never-seen pixels: what no frame reveals.

It is filled spatially once and then *carried along the flow* into the next frames, so the
invented content moves with the background instead of flickering; each carried pixel is sampled
where it was first filled (:class:`CarryHistory`), so the carry does not blur it. The spatial
fill is exemplar (patch) based, so edges go on through the hole, but it does not paste single
patches: the coarse content is the consensus of many candidate patches (with a smooth membrane),
which is what the truth most likely is where nothing shows it, and only the finest grain comes
from the single best patch, so the fill keeps the surroundings' texture instead of a smooth
silhouette.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .numeric import carried_step, sample
from .settings import check_cancel


# A carried pixel keeps its origin: the earlier output frame of its recursion where its colour was
# first sampled (where it was propagated, spatially filled or known), and the position there. Its
# detail is sampled at the origin once instead of again from every frame on the way: a bilinear
# sample at a fractional position is a low-pass filter, and the fill of what no frame shows,
# carried through 20 frames, lost four fifths of its gradient energy to them (a smooth silhouette of
# the removed thing; bench/RESULTS.md, issue 13 session 17).
# What the later stages of each frame added to it (the boundary match, the seam removal: smooth) is
# carried too, CORRECTION_KEPT of it each frame. Carried whole, the corrections piled up over the
# frames (object-shaped holes 22.31 dB, camel's 16.35). Not carried, each frame's correction was
# measured again on the noisy ring: a still scene's fill changed by 1.00 level per frame, above the
# bound of 0.72 in tests/nodes/test_flow_fill.py (0.5: 0.82; 0.8: 0.69, and 22.40 dB, camel 17.02).
# The frames that are still some pixel's origin are kept, at most ORIGIN_FRAMES with the newest;
# beyond that, the pixels of the origins that the fewest pixels share take the newest frame as
# their origin (one resampling; they are mostly slivers along the hole's edge).
ORIGIN_FRAMES = 4
CORRECTION_KEPT = 0.8

# A carry's origins, ``(frame number [K] int32, y [K], x [K], colour sampled there [K, 3])``.
Origins = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class CarryHistory:
    """A recursion's newest output frame, the earlier ones its carried pixels came from, and where.

    Each pixel of the newest frame has an origin: the frame and float position its colour was
    first sampled at. A pixel carried into the newest frame keeps the origin it was carried from,
    and what the newest frame's later stages added to that colour (its *correction*, of which the
    next frame carries :data:`CORRECTION_KEPT`); every other pixel (propagated, spatially filled,
    known) is its own origin.
    """

    def __init__(self, origin_frames: int = ORIGIN_FRAMES):
        if origin_frames < 1:
            raise ValueError("a carry history keeps at least one frame")
        self.origin_frames = origin_frames
        self._frames: dict[int, np.ndarray] = {}  # by number, in the order they came
        self._newest = -1
        self._source: np.ndarray | None = None      # [H, W] int32: the origin frame's number, -1: its own
        self._origin: np.ndarray | None = None      # [H, W, 2] float32 (y, x), read where not its own
        self._correction: np.ndarray | None = None  # [H, W, 3] float32: output - origin's colour, 0 where its own
        self._carried: tuple[np.ndarray, np.ndarray] | None = None  # the pixels that are not their own origin

    @property
    def last(self) -> np.ndarray | None:
        """The newest output frame ``[H, W, 3]`` float32, or None before the first."""
        return self._frames.get(self._newest)

    def frames_kept(self) -> int:
        """How many frames the history holds (the newest and the origins still in use)."""
        return len(self._frames)

    def push(self, frame: np.ndarray, ys: np.ndarray | None = None, xs: np.ndarray | None = None,
             origins: Origins | None = None) -> None:
        """Add the newest output frame (kept by reference, not changed after); ``(ys, xs)`` its carried
        pixels and their ``origins`` as :meth:`carry` gave them."""
        h, w = frame.shape[:2]
        if self._source is None or self._source.shape != (h, w):
            self._source = np.full((h, w), -1, np.int32)
            self._origin = np.zeros((h, w, 2), np.float32)
            self._correction = np.zeros((h, w, 3), np.float32)
        elif self._carried is not None:
            self._source[self._carried] = -1
            self._correction[self._carried] = 0.0
        self._newest += 1
        self._frames[self._newest] = frame
        self._carried = None
        used = {self._newest}
        if ys is not None and ys.size:
            number, oy, ox, sampled = origins
            kept, counts = np.unique(number, return_counts=True)
            if kept.size >= self.origin_frames:  # the fewest pixels become their own origin here
                kept = kept[np.lexsort((kept, counts))[kept.size - self.origin_frames + 1:]]
                stay = np.isin(number, kept)
                ys, xs, number, oy, ox, sampled = ys[stay], xs[stay], number[stay], oy[stay], ox[stay], sampled[stay]
            used.update(kept.tolist())
            self._source[ys, xs] = number
            self._origin[ys, xs, 0], self._origin[ys, xs, 1] = oy, ox
            self._correction[ys, xs] = frame[ys, xs] - sampled
            self._carried = (ys, xs)
        for old in [n for n in self._frames if n not in used]:
            del self._frames[old]

    def carry(self, qy: np.ndarray, qx: np.ndarray) -> tuple[np.ndarray, Origins]:
        """The colours ``[K, 3]`` of float positions ``(qy, qx)`` of the newest frame, and their origins
        as the next frame's pixels carry them.

        A position's origin is its nearest pixel's, moved by the position's offset from that pixel
        (a carry is locally a shift). Its colour is the origin's, sampled there, plus
        :data:`CORRECTION_KEPT` of the newest frame's correction around the position (bilinear: it
        is smooth).
        """
        h, w = self._source.shape
        ny = np.clip(np.rint(qy), 0, h - 1).astype(np.intp)
        nx = np.clip(np.rint(qx), 0, w - 1).astype(np.intp)
        number = self._source[ny, nx]
        older = number >= 0
        number = np.where(older, number, self._newest).astype(np.int32)
        oy, ox = qy.astype(np.float32), qx.astype(np.float32)
        oy[older] += self._origin[ny[older], nx[older], 0] - ny[older]
        ox[older] += self._origin[ny[older], nx[older], 1] - nx[older]
        sampled = np.empty((qy.size, 3), np.float32)
        for n in np.unique(number):
            at = np.nonzero(number == n)[0]
            sampled[at] = sample(self._frames[int(n)], oy[at], ox[at])
        return sampled + CORRECTION_KEPT * sample(self._correction, qy, qx), (number, oy, ox, sampled)


def carry_and_fill(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, history: CarryHistory | None,
                   to_previous: np.ndarray | None, radius: int, avoid: np.ndarray | None = None,
                   should_cancel: Callable[[], bool] | None = None, *,
                   not_carried: np.ndarray | None = None) -> tuple[np.ndarray, Origins]:
    """Fill never-seen pixels ``(ys, xs)`` of ``frame [H, W, 3]`` (float32, modified in place).

    Pixels whose flow leads into the previous output frame (``history.last``) take its (already
    filled) colour, sampled where it came from (:class:`CarryHistory`), so a spatial fill made
    once moves with the background and keeps its grain; the rest, and those ``not_carried [K]``
    (bool: their flow leads onto a thing moving on its own there, see
    :func:`.source_selection.carried_onto`), get an exemplar fill (:func:`exemplar_fill`) from
    the pixels around them, never from the ``avoid [H, W]`` pixels (things that move on their own).

    Returns:
        ``carried [K]`` bool, and the carried pixels' origins for :meth:`CarryHistory.push`.
    """
    h, w = frame.shape[:2]
    carried = np.zeros(ys.size, bool)
    origins: Origins = (np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.float32),
                        np.zeros((0, 3), np.float32))
    if history is not None and history.last is not None and to_previous is not None and ys.size:
        qy, qx, carried = carried_step(to_previous, ys, xs)
        if not_carried is not None:
            carried &= ~not_carried
        frame[ys[carried], xs[carried]], origins = history.carry(qy[carried], qx[carried])
    if not carried.all():
        fill = np.zeros((h, w), bool)
        fill[ys[~carried], xs[~carried]] = True
        exemplar_fill(frame, fill, avoid, fallback_radius=radius, should_cancel=should_cancel)
    return carried, origins


def coarse_of_with_grain_of(coarse: np.ndarray, grainy: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``[K, 3]``: at pixels ``(ys, xs)``, ``coarse [H, W, 3]``'s content above the grain plus ``grainy``'s grain.

    The grain is what a Gaussian of :data:`GRAIN_SIGMA` px removes. A mean of two spatial fills of what
    no frame shows (two recursions' carried fills) is a better guess of its coarse content than either,
    but averaging two grains halves their texture: a smooth silhouette. So the mean keeps one grain.
    """
    if ys.size == 0:
        return np.zeros((0, 3), np.float32)
    h, w = coarse.shape[:2]
    reach = int(np.ceil(3 * GRAIN_SIGMA)) + 1
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + 1 + reach)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + 1 + reach)

    box = (slice(y0, y1), slice(x0, x1))
    swapped = _grain_swapped(coarse[box], grainy[box], GRAIN_SIGMA, cv2.BORDER_REPLICATE)
    return swapped[ys - y0, xs - x0].astype(np.float32)


def _grain_swapped(coarse: np.ndarray, grainy: np.ndarray, sigma: float,
                   border: int = cv2.BORDER_DEFAULT) -> np.ndarray:
    """``coarse`` above the grain (what a Gaussian of ``sigma`` px keeps) plus ``grainy``'s grain."""
    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=border)

    return blur(coarse) + grainy - blur(grainy)


# Exemplar fill: patch side (odd), and how far around the fill region sources are searched (in
# patch sides, at least; or half the region's size, whichever is larger).
PATCH = 9
_SEARCH_PATCHES = 4
# Sources are searched within this many patches of the target (or, where none there is fully
# known, of the known patch nearest the target).
_LOCAL_PATCHES = 5
# Priority = confidence x (structure + this): a flat front still gets filled, edges go first.
_FLAT_PRIORITY = 0.05
# The fill's coarse content (above the grain) is the mean of this many best-matching source
# patches, averaged with a Telea membrane with weight MEMBRANE_WEIGHT, except where the candidates
# agree (mean squared deviation well under AGREE**2 levels**2: a regular structure, certain); the
# grain finer than a Gaussian of GRAIN_SIGMA px is the single best patches'. The membrane is Telea
# with a wide radius, MEMBRANE_RADIUS px: a smooth weighted mean of the rim, not a continuation of
# its fine detail (the candidates give that). Measured on the first spatial fill of 12 bench cases
# (PSNR of the never-revealed pixels, mean over the cases; bench/RESULTS.md, issue 13 session 5):
# single best patch 18.28 dB, Telea 18.86, this 19.18. Without the grain 19.65, but the edge of the
# failure-mode test smears; grain below 1.0 px 19.30 but 0.50 of the surroundings' gradient energy
# there (bar 0.5; this: 0.68); below 1.6 px 19.08. 16 candidates 19.11. Membrane radius 5 px
# 18.91, 9: 19.01, 30: 19.24 for twice the time (all at full size); a membrane only below 2-4 px:
# -0.3 to -0.4 dB.
CANDIDATES = 32
MEMBRANE_WEIGHT = 0.5
MEMBRANE_RADIUS = 20
# The membrane is smooth, so it is made at 1/MEMBRANE_SCALE of the size (Telea's time grows with
# the radius squared: a 400x400 hole, radius 20, took 3.4 s at full size, longer than the cancel
# allows; at half size 16 times less, and 19.22 dB on the bench cases instead of 19.18). Where the
# small image would still hide more than MEMBRANE_PIXELS pixels (a fifth of a 4K frame: 2.2 s in
# one call), the scale doubles until it does not.
MEMBRANE_SCALE = 2
MEMBRANE_PIXELS = 262144
AGREE = 1.0
GRAIN_SIGMA = 1.3


def exemplar_fill(image: np.ndarray, fill: np.ndarray, avoid: np.ndarray | None = None,
                  patch: int = PATCH, fallback_radius: int = 5,
                  should_cancel: Callable[[], bool] | None = None, *, candidates: int = CANDIDATES,
                  membrane_weight: float = MEMBRANE_WEIGHT, agree: float = AGREE,
                  grain_sigma: float | None = GRAIN_SIGMA) -> np.ndarray:
    """Structure-aware patch-based fill of ``fill [H, W]`` in ``image [H, W, 3]`` float32 (in place).

    Exemplar-based inpainting in the manner of Criminisi, Perez and Toyama (2004): the fill
    grows from its outline inwards, one patch at a time; the next patch is the one on the front
    with the most known pixels and the strongest structure (so edges are carried in first and
    go on straight through the hole), and its missing pixels are copied from the most similar
    fully known patch near it (sum of squared differences over the pixels already known,
    ``cv2.matchTemplate`` with a mask; searched within a few patches of the target, or of the
    nearest fully known patch where there is none around the target). Copying whole patches keeps
    texture and sharp edges, where a diffusion (Telea, membranes) leaves a smooth silhouette. Sources never include
    ``avoid`` pixels (things moving on their own) nor other hole pixels.

    The front grows with the single best patch (so the next match sees sharp structure), but the
    value written is blended: every copied pixel also gets the mean of the ``candidates`` best
    patches (a vote of many plausible continuations: where they agree, an edge or a regular
    texture, it stays sharp; where they do not, the mean is the best guess in squared error, which
    one pasted patch is not). The result is ``coarse + grain``: ``coarse`` is that consensus
    averaged with a wide Telea membrane of the sources (weight ``membrane_weight``, less where the
    candidates agree within about ``agree`` levels), blurred by ``grain_sigma`` px; ``grain`` is
    the single best patches' content finer than that blur, so the fill keeps the texture's grain
    and sharp edges instead of a smooth silhouette. ``candidates=1, membrane_weight=0,
    grain_sigma=None`` is the plain Criminisi fill.

    Falls back to OpenCV Telea where no fully known patch exists (a tiny frame or a hole that
    covers nearly everything). ``should_cancel`` is polled every patch and around the set-up.

    Returns:
        ``image``, filled.
    """
    if not fill.any():
        return image
    h, w = fill.shape
    half = patch // 2
    ys, xs = np.nonzero(fill)
    size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    margin = max(_SEARCH_PATCHES * patch, size // 2) + half
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)
    box = image[y0:y1, x0:x1]  # a view: writes go to image
    todo = fill[y0:y1, x0:x1].copy()
    source = ~todo if avoid is None else ~todo & ~avoid[y0:y1, x0:x1]
    square = np.ones((patch, patch), np.uint8)
    # Top-left corners of fully known source patches (matchTemplate's result grid).
    whole = cv2.erode(source.astype(np.uint8), square, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    valid = whole[half:box.shape[0] - half, half:box.shape[1] - half].astype(bool)
    if not valid.any() or box.shape[0] < patch or box.shape[1] < patch:
        return _telea(image, fill, fallback_radius)
    search = _SourceSearch(box, valid, patch)
    # The membrane is drawn from the sources only: avoided pixels are part of its hole. Over a
    # fifth of a 1080p frame it takes half a second, so the cancel is polled on either side.
    check_cancel(should_cancel)
    membrane = _membrane(box, ~source) if membrane_weight > 0 else None
    check_cancel(should_cancel)
    consensus = box.copy()  # [h, w, 3]: the mean of the candidates where filled
    spread = np.zeros(todo.shape, np.float32)  # [h, w]: their mean squared deviation from it
    confidence = (~todo).astype(np.float32)
    grey = cv2.cvtColor(np.clip(box, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    structure = np.sqrt(gx * gx + gy * gy) / (4.0 * 255.0)
    # Structure is measured from known pixels only; the hole's content (the object) is unknown.
    padded = cv2.copyMakeBorder(box, half, half, half, half, cv2.BORDER_REFLECT)
    todo_p = cv2.copyMakeBorder(todo.astype(np.uint8), half, half, half, half, cv2.BORDER_CONSTANT, value=1)
    known_structure = structure * (~todo) * (source | todo)
    check_cancel(should_cancel)
    front = _FillFront(todo, confidence, known_structure, half)
    for _ in range(int(todo.sum()) + 1):
        # Polled every patch: deep inside a hole the size of a fifth of a 4K frame one patch's search
        # spans over a thousand pixels each way, and 16 of them took seconds.
        check_cancel(should_cancel)
        best = front.best()
        if best is None:  # nothing left to fill, or nothing on the front
            break
        cy, cx = best
        # The target patch in padded coordinates is [cy, cy + patch) x [cx, cx + patch).
        target = padded[cy:cy + patch, cx:cx + patch]
        missing = todo_p[cy:cy + patch, cx:cx + patch].astype(bool)
        mask = np.repeat((~missing).astype(np.float32)[..., None], 3, -1)
        corners = search.best(target, mask, cy, cx, candidates)
        sy, sx = corners[0]
        src = box[sy:sy + patch, sx:sx + patch]
        stack = np.stack([box[a:a + patch, b:b + patch] for a, b in corners])  # [K, patch, patch, 3]
        mean = stack.mean(0)
        deviation = ((stack - mean) ** 2).mean((0, 3))  # [patch, patch]
        src_structure = known_structure[sy:sy + patch, sx:sx + patch]
        # Write the missing pixels of the target patch (clipped to the box).
        ty0, tx0 = cy - half, cx - half
        ly0, lx0 = max(0, -ty0), max(0, -tx0)
        ly1 = min(patch, box.shape[0] - ty0)
        lx1 = min(patch, box.shape[1] - tx0)
        sub = missing[ly0:ly1, lx0:lx1]
        region = (slice(ty0 + ly0, ty0 + ly1), slice(tx0 + lx0, tx0 + lx1))
        box[region][sub] = src[ly0:ly1, lx0:lx1][sub]
        consensus[region][sub] = mean[ly0:ly1, lx0:lx1][sub]
        spread[region][sub] = deviation[ly0:ly1, lx0:lx1][sub]
        padded[cy + ly0:cy + ly1, cx + lx0:cx + lx1][sub] = src[ly0:ly1, lx0:lx1][sub]
        known_structure[region][sub] = src_structure[ly0:ly1, lx0:lx1][sub]
        confidence[region][sub] = front.confidence_at(cy, cx)  # Criminisi: the patch's confidence before the copy
        todo[region][sub] = False
        todo_p[cy + ly0:cy + ly1, cx + lx0:cx + lx1][sub] = 0
        front.filled(region, int(sub.sum()))
    _blend_scales(box, consensus, membrane, spread, fill[y0:y1, x0:x1] & ~todo, membrane_weight, agree,
                  grain_sigma)
    if todo.any():  # nothing left to copy from for some pixels
        rest = np.zeros_like(fill)
        rest[y0:y1, x0:x1] = todo
        _telea(image, rest, fallback_radius)
    return image


class _SourceSearch:
    """Where the exemplar fill looks for source patches: the fully known patches near a target.

    ``valid [gh, gw]`` bool is matchTemplate's result grid over the fill's box (the top-left
    corners of the fully known source patches); it does not change during the fill. A target is
    compared with the patches within :data:`_LOCAL_PATCHES` patches of it. Deep inside a large
    hole none of those is known: the window is then placed, at the same size, around the known
    patch nearest the target (found once for the whole grid, by a distance transform) instead of
    growing around the target until it reaches one. The grown window held mostly hole, and its
    cost grew with the square of the hole's size: at 1920x1080 a camel's hole made windows of up
    to 369 px a side, two thirds of the fill's time.
    """

    def __init__(self, box: np.ndarray, valid: np.ndarray, patch: int):
        self.box, self.patch = box, patch
        self.invalid_cost = np.where(valid, 0.0, np.inf).astype(np.float32)
        self.radius = _LOCAL_PATCHES * patch
        self._nearest = None  # [gh, gw, 2]: the nearest valid corner, made when first needed

    def best(self, target: np.ndarray, mask: np.ndarray, cy: int, cx: int, count: int) -> list[tuple[int, int]]:
        """Top-left corners (in the box) of the ``count`` known patches most like ``target``, best first.

        ``mask``: the target's known pixels (matchTemplate's mask); ``(cy, cx)``: the target's
        corner on the grid. Fewer corners come back where fewer known patches exist.
        """
        ty0, ty1, tx0, tx1 = self._window(cy, cx)
        window = self.invalid_cost[ty0:ty1, tx0:tx1]
        if not np.isfinite(window).any():
            ny, nx = self._nearest_valid(cy, cx)
            ty0, ty1, tx0, tx1 = self._window(ny, nx)
            window = self.invalid_cost[ty0:ty1, tx0:tx1]
        patch = self.patch
        region = self.box[ty0:ty1 + patch - 1, tx0:tx1 + patch - 1]
        cost = (cv2.matchTemplate(region, target, cv2.TM_SQDIFF, mask=mask) + window).ravel()
        count = max(1, min(count, int(np.isfinite(cost).sum())))
        best = np.argpartition(cost, count - 1)[:count] if count < cost.size else np.arange(cost.size)
        best = best[np.argsort(cost[best], kind="stable")]
        rows, cols = np.unravel_index(best, window.shape)
        return [(ty0 + int(r), tx0 + int(c)) for r, c in zip(rows, cols)]

    def _window(self, cy: int, cx: int) -> tuple[int, int, int, int]:
        gh, gw = self.invalid_cost.shape
        r = self.radius
        return max(0, cy - r), min(gh, cy + r + 1), max(0, cx - r), min(gw, cx + r + 1)

    def _nearest_valid(self, cy: int, cx: int) -> tuple[int, int]:
        if self._nearest is None:
            valid = np.isfinite(self.invalid_cost)
            # Labels: each valid corner its own; every grid point gets the label of the nearest one.
            _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 5,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
            vy, vx = np.nonzero(valid)
            places = np.zeros((int(labels.max()) + 1, 2), np.int32)  # 8 bytes a grid point
            places[labels[vy, vx]] = np.stack([vy, vx], 1)
            self._nearest = places[labels]
        gh, gw = self.invalid_cost.shape
        ny, nx = self._nearest[min(max(cy, 0), gh - 1), min(max(cx, 0), gw - 1)]
        return int(ny), int(nx)


class _FillFront:
    """The exemplar fill's front and each front pixel's priority, kept up to date patch by patch.

    Priority = confidence x (structure + :data:`_FLAT_PRIORITY`), both the mean over a patch
    around the pixel (Criminisi); the front is the pixels still to fill that touch a known one.
    A copied patch changes them only within half a patch of itself, so only that part is made
    again, and the best pixel is found from each row's maximum: the work per patch no longer
    grows with the size of the hole (over a fifth of a 1080p frame, made anew for every patch,
    they took most of four minutes). The row maxima give the first best pixel in raster order,
    as an argmax over the whole plane would.

    ``todo [h, w]`` bool, ``confidence``, ``structure [h, w]`` float32: the fill's own arrays,
    read (never written) here; call :meth:`filled` after each patch has been written into them.
    """

    def __init__(self, todo: np.ndarray, confidence: np.ndarray, structure: np.ndarray, half: int):
        self._todo, self._confidence, self._structure, self._half = todo, confidence, structure, half
        self._left = int(todo.sum())
        self._conf = _patch_mean(confidence, half)
        self._data = _patch_mean(structure, half)
        touches = cv2.dilate((~todo).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        self._priority = np.where(todo & touches, self._conf * (self._data + _FLAT_PRIORITY), -1.0)
        self._row_best = self._priority.max(1)

    def best(self) -> tuple[int, int] | None:
        """The front pixel ``(y, x)`` of highest priority; None when nothing is left or none touches a known one."""
        if self._left == 0:
            return None
        y = int(self._row_best.argmax())
        if self._row_best[y] < 0:
            return None
        return y, int(self._priority[y].argmax())

    def confidence_at(self, y: int, x: int) -> float:
        """The patch mean of the confidence at ``(y, x)``."""
        return self._conf[y, x]

    def filled(self, region: tuple[slice, slice], count: int) -> None:
        """``count`` pixels of ``region`` (a patch, clipped to the plane) were filled: update around it."""
        h, w = self._todo.shape
        reach = self._half
        y0, y1 = max(0, region[0].start - reach), min(h, region[0].stop + reach)
        x0, x1 = max(0, region[1].start - reach), min(w, region[1].stop + reach)
        self._left -= count
        self._conf[y0:y1, x0:x1] = _patch_mean(self._confidence, reach, (y0, y1, x0, x1))
        self._data[y0:y1, x0:x1] = _patch_mean(self._structure, reach, (y0, y1, x0, x1))
        # The front there: the pixels to fill with a known pixel among their 8 neighbours.
        a0, a1, b0, b1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        known = (~self._todo[a0:a1, b0:b1]).astype(np.uint8)
        touches = cv2.dilate(known, np.ones((3, 3), np.uint8)).astype(bool)[y0 - a0:y1 - a0, x0 - b0:x1 - b0]
        front = self._todo[y0:y1, x0:x1] & touches
        self._priority[y0:y1, x0:x1] = np.where(
            front, self._conf[y0:y1, x0:x1] * (self._data[y0:y1, x0:x1] + _FLAT_PRIORITY), -1.0)
        self._row_best[y0:y1] = self._priority[y0:y1].max(1)


def _patch_mean(values: np.ndarray, half: int, part: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The mean of ``values [h, w]`` float32 over the ``2 half + 1`` square around each pixel, zero outside the plane.

    Of the whole plane, or of ``part`` ``(y0, y1, x0, x1)`` only: each pixel's sum is taken in the
    same order either way (its row sums, then their column sum), so a part made again gives the
    very floats of the whole.
    """
    h, w = values.shape
    y0, y1, x0, x1 = part if part is not None else (0, h, 0, w)
    side = 2 * half + 1
    window = np.zeros((y1 - y0 + side - 1, x1 - x0 + side - 1), np.float32)
    a0, a1, b0, b1 = max(0, y0 - half), min(h, y1 + half), max(0, x0 - half), min(w, x1 + half)
    window[a0 - (y0 - half):a1 - (y0 - half), b0 - (x0 - half):b1 - (x0 - half)] = values[a0:a1, b0:b1]
    rows = window[:, 0:x1 - x0].copy()
    for k in range(1, side):
        rows += window[:, k:k + x1 - x0]
    total = rows[0:y1 - y0].copy()
    for k in range(1, side):
        total += rows[k:k + y1 - y0]
    return total * np.float32(1.0 / (side * side))


def _blend_scales(sharp: np.ndarray, consensus: np.ndarray, membrane: np.ndarray | None, spread: np.ndarray,
                  filled: np.ndarray, membrane_weight: float, agree: float, grain_sigma: float | None) -> None:
    """Write ``coarse + grain`` into ``sharp [h, w, 3]`` at ``filled [h, w]`` (in place).

    ``coarse`` is the candidates' ``consensus [h, w, 3]`` moved towards the ``membrane`` by
    ``membrane_weight``, less where the candidates agree (``spread [h, w]``, their mean squared
    deviation, small against ``agree**2``), blurred by ``grain_sigma`` px; ``grain`` is what
    ``sharp`` has above that blur. ``grain_sigma`` None: the coarse content as it is, no grain.
    """
    if not filled.any():
        return
    coarse = consensus
    if membrane is not None:
        weight = membrane_weight * spread / (spread + agree * agree + 1e-12)  # [h, w]
        coarse = consensus + weight[..., None] * (membrane - consensus)
    if grain_sigma is not None and grain_sigma > 0:
        coarse = _grain_swapped(coarse, sharp, grain_sigma)
    sharp[filled] = coarse[filled]


def _membrane(box: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """A smooth fill ``[h, w, 3]`` float32 of the ``unknown [h, w]`` pixels of ``box [h, w, 3]`` from the rest.

    Telea with the wide :data:`MEMBRANE_RADIUS`, made at 1/:data:`MEMBRANE_SCALE` of the size (or
    less, see :data:`MEMBRANE_PIXELS`; a small pixel is unknown if any of its pixels is) and scaled
    back up bilinearly.
    """
    h, w = unknown.shape
    scale = MEMBRANE_SCALE
    while unknown.sum() > MEMBRANE_PIXELS * scale * scale:
        scale *= 2
    size = (-(-w // scale), -(-h // scale))  # (width, height), rounded up
    small = cv2.resize(np.clip(np.rint(box), 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    small_unknown = cv2.resize(unknown.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    radius = max(1, MEMBRANE_RADIUS // scale)
    painted = cv2.inpaint(small, small_unknown.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    return cv2.resize(painted, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _telea(image: np.ndarray, fill: np.ndarray, radius: int) -> np.ndarray:
    """OpenCV Telea over ``fill`` (in place), from the rounded image."""
    mask = fill.astype(np.uint8) * 255
    rounded = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    painted = cv2.inpaint(rounded, mask, radius, cv2.INPAINT_TELEA)
    image[fill] = painted[fill]
    return image
