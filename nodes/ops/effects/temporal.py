"""Effects stay near their object and move with it: reach, contact and motion checks.

* **Reach.** An effect lies within ``max_reach`` pixels of the object (distance transform).
* **Contact.** The few pixels right around the object are left out of the tests (its own
  anti-aliased, motion-blurred edge darkens them and moves with it) and given back afterwards
  where they join a found region to the object, so the grown mask has no gap.
* **Contact.** A region must come within a gap of the object (a quarter of the reach): shadows
  and reflections start at the object, or near it for a jumping one.
* **Motion.** A region found in frame t, moved by the object's motion from t to a neighbouring
  frame, must land on the evidence of that frame, and not clearly worse than when moved by the
  camera's motion, in every neighbour that shows the object. The object's motion is the shift of its mask's centre; static things (which
  the background normally holds, but misalignment can leave behind) move with the camera.

Arrays: bool masks ``[H, W]``; all numpy on the CPU.
"""
from __future__ import annotations

import cv2
import numpy as np

# The ring around the object left out of the tests (px), and the slack of the motion check:
# the moved region is grown by this many pixels plus this fraction of the object's shift.
CONTACT_RING = 2
MOTION_SLACK_PX = 3
MOTION_SLACK_FRACTION = 0.25
# fill_enclosed closes necks up to this radius (px) before looking for enclosed ground.
ENCLOSE_NECK = 6
# A region must land on this fraction of evidence in at least one neighbouring frame, and on
# not clearly less (by more than GROUND_TIE) when moved with the object than with the ground.
MIN_AGREEMENT = 0.5
GROUND_TIE = 0.1


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by a disk of radius ``pixels``."""
    if pixels <= 0 or not mask.any():
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def within_reach(obj: np.ndarray, reach: int) -> np.ndarray:
    """Pixels at most ``reach`` pixels from the object, the object excluded."""
    if not obj.any():
        return np.zeros_like(obj)
    distance = cv2.distanceTransform((~obj).astype(np.uint8), cv2.DIST_L2, 5)
    return (distance <= reach) & ~obj


def search_area(obj: np.ndarray, reach: int) -> np.ndarray:
    """Where regions are looked for: within reach, outside the object's contact ring."""
    return within_reach(obj, reach) & ~grow(obj, CONTACT_RING)


def close_contact(regions: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Give back the contact ring where it lies between a found region and the object."""
    if not regions.any():
        return regions
    ring = grow(obj, CONTACT_RING) & ~obj
    return regions | (ring & grow(regions, CONTACT_RING + 1))


def centre(obj: np.ndarray) -> np.ndarray | None:
    """``(x, y)`` of the mask's centre of mass, None when empty."""
    ys, xs = np.nonzero(obj)
    if ys.size == 0:
        return None
    return np.array([xs.mean(), ys.mean()])


def shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``mask`` moved by ``(dx, dy)`` whole pixels (rounded); what leaves the frame is lost."""
    h, w = mask.shape
    ix, iy = int(round(dx)), int(round(dy))
    out = np.zeros_like(mask)
    if abs(ix) >= w or abs(iy) >= h:
        return out
    out[max(0, iy):h + min(0, iy), max(0, ix):w + min(0, ix)] = \
        mask[max(0, -iy):h - max(0, iy), max(0, -ix):w - max(0, ix)]
    return out


def _landing_fraction(labels: np.ndarray, count: int, dx: float, dy: float, landing: np.ndarray) -> np.ndarray:
    """Per label, the fraction of its in-frame pixels that land on ``landing`` after a move."""
    moved = shift(labels.astype(np.int32) + 1, dx, dy) - 1  # -1: left the frame
    inside = np.bincount(moved[moved > 0].ravel(), minlength=count).astype(np.float64)
    hits = np.bincount(moved[(moved > 0) & landing].ravel(), minlength=count).astype(np.float64)
    out = np.zeros(count)
    np.divide(hits, inside, out=out, where=inside > 0)
    return out


def moves_with_object(regions: np.ndarray, obj_t: np.ndarray,
                      others: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Keep the connected regions of frame t that move with the object, not with the ground.

    For each neighbouring frame s the region is moved twice: by the object's shift (its mask
    centre) and by the camera's motion (the homography from t to s, at the region's centre).
    It must land on s's evidence after the first move, and not clearly worse than after the second
    when the two moves differ, in every neighbour where the object is (a static thing that the background missed, e.g. through
    misalignment, moves with the camera).

    Args:
        regions: ``[H, W]`` bool, frame t's found regions.
        obj_t: frame t's object.
        others: ``(object_s, evidence_s, homography t->s)`` of neighbouring frames (evidence:
            where that frame's regions were found). Empty (one frame): every region is kept.
    Returns:
        ``[H, W]`` bool, the regions confirmed by every neighbour that shows the object.
    """
    if not others or not regions.any():
        return regions
    c_t = centre(obj_t)
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    confirmed = np.zeros(count, int)
    judged = 0
    for obj_s, evidence_s, matrix in others:
        c_s = centre(obj_s)
        if c_t is None or c_s is None:
            continue
        judged += 1
        dx, dy = c_s - c_t
        slack = int(MOTION_SLACK_PX + MOTION_SLACK_FRACTION * np.hypot(dx, dy))
        landing = grow(evidence_s, slack)
        with_object = _landing_fraction(labels, count, dx, dy, landing)
        for label in np.nonzero(with_object >= MIN_AGREEMENT)[0]:
            if label == 0:
                continue
            ys, xs = np.nonzero(labels == label)
            point = np.array([[[xs.mean(), ys.mean()]]], np.float64)
            moved = cv2.perspectiveTransform(point, matrix)[0, 0] - point[0, 0]
            if np.hypot(moved[0] - dx, moved[1] - dy) <= slack:
                confirmed[label] += 1  # object and ground move alike here: the ratio test decides
                continue
            with_ground = _landing_fraction(labels == label, 2, moved[0], moved[1], landing)[1]
            confirmed[label] += int(with_object[label] >= with_ground - GROUND_TIE)
    if judged == 0:
        return regions  # the object is in no neighbouring frame: nothing to compare with
    keep = confirmed >= judged  # every neighbour that shows the object agrees
    keep[0] = False
    return keep[labels]


def near_contact(regions: np.ndarray, obj: np.ndarray, gap: float) -> np.ndarray:
    """Keep the connected regions that come within ``gap`` pixels of the object."""
    if not regions.any():
        return regions
    distance = cv2.distanceTransform((~obj).astype(np.uint8), cv2.DIST_L2, 5)
    count, labels = cv2.connectedComponents(regions.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[regions & (distance <= gap)])] = True
    keep[0] = False
    return keep[labels]


def fill_enclosed(regions: np.ndarray, obj: np.ndarray, frame_luma: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Add the ground enclosed between the object and its found regions when it looks shadowed.

    A slow object's shadow can cover the same ground in every neighbouring frame, so the
    background there is shadowed too and the ratio test sees nothing: the middle of the shadow
    is missed while its leading and trailing parts are found. Such a gap is a hole of
    ``object | regions``; it is added when its mean luminance is nearer the found regions'
    than the lit ground's around them (the gap between a walker's legs is lit, and stays out).

    Args:
        regions, obj, allowed: ``[H, W]`` bool. frame_luma: ``[H, W]`` float32 luminance.
    Returns:
        ``[H, W]`` bool, ``regions`` with the accepted holes.
    """
    if not regions.any():
        return regions
    # the contact ring was left out of the tests, and a gap may leak out through a narrow neck
    closed = cv2.morphologyEx((regions | grow(obj, CONTACT_RING)).astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ENCLOSE_NECK + 1,) * 2))
    union = closed.astype(bool)
    union = union.astype(np.uint8)
    count, labels = cv2.connectedComponents(1 - union, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    lit_ring = grow(regions, 4) & ~union.astype(bool)
    if not lit_ring.any():
        return regions
    dark_level, lit_level = float(frame_luma[regions].mean()), float(np.median(frame_luma[lit_ring]))
    out = regions.copy()
    for label in range(1, count):
        if label in edge:
            continue
        hole = labels == label
        hole = hole & ~obj
        if not (hole & ~allowed).any() and abs(float(frame_luma[hole].mean()) - dark_level) < abs(
                float(frame_luma[hole].mean()) - lit_level):
            out |= hole
    return out
