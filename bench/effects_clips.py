"""Synthetic clips with known shadows and reflections, for bench_effects.py and the demo workflow.

Each clip is rendered in world coordinates (a canvas larger than the frame) and seen through a
moving camera (a pan plus a slow zoom: a homography of the canvas), so the background moves
too. Cases:

* ``shadow``: textured ground, a car-like object driving across it, its shadow cast by a low
  sun (the silhouette sheared and squashed onto the ground) with a soft penumbra; static
  distractors on and around its path (tree shadows, dark paint, a parked dark object).
* ``reflection``: a glossy tiled floor, an upright object walking across it and its mirror
  image about the contact line, fading with distance; a dark static object too.
* ``distractors``: as ``shadow`` but the object casts nothing (only static distractors).

Truth masks are in frame pixels: object (bool), shadow (penumbra alpha > 0.5, off the object),
reflection (the mirrored silhouette off the object).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CASES = ("shadow", "reflection", "distractors")


@dataclass
class SyntheticClip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    objects: np.ndarray  # bool [T, H, W]
    shadow: np.ndarray  # bool [T, H, W]
    reflection: np.ndarray  # bool [T, H, W]


def _texture(rng: np.random.Generator, h: int, w: int, base: tuple[float, float, float],
             contrast: float) -> np.ndarray:
    """Multi-scale smooth noise in colour, float32 [h, w, 3] 0..255."""
    grey = np.zeros((h, w), np.float32)
    for scale, weight in ((64, 0.5), (16, 0.3), (4, 0.25), (1, 0.15)):
        small = rng.standard_normal((h // scale + 2, w // scale + 2)).astype(np.float32)
        grey += weight * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tint = rng.standard_normal((h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
    tint = cv2.resize(tint, (w, h), interpolation=cv2.INTER_CUBIC) * 0.04
    out = np.array(base, np.float32) * (1.0 + contrast * grey[..., None] + tint)
    return np.clip(out, 0, 255)


def _car(h: int, w: int) -> np.ndarray:
    """A side-view car silhouette, float32 [h, w] in {0, 1}."""
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (0, int(h * 0.4)), (w - 1, int(h * 0.85)), 1, -1)
    cv2.rectangle(m, (int(w * 0.22), 0), (int(w * 0.72), int(h * 0.5)), 1, -1)
    r = int(h * 0.16)
    for cx in (int(w * 0.2), int(w * 0.8)):
        cv2.circle(m, (cx, h - 1 - r), r, 1, -1)
    return m.astype(np.float32)


def _walker(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 1, -1)
    return m.astype(np.float32)


def _paste(canvas: np.ndarray, patch: np.ndarray, x: float, y: float) -> np.ndarray:
    """``patch`` [h, w, ...] placed with its top-left at (x, y) on a zero canvas (subpixel)."""
    out = np.zeros(canvas.shape[:2] + patch.shape[2:], np.float32)
    matrix = np.float32([[1, 0, x], [0, 1, y]])
    return cv2.warpAffine(patch.astype(np.float32), matrix, (canvas.shape[1], canvas.shape[0]), dst=out,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _cast_shadow(silhouette: np.ndarray, shear: float, squash: float, penumbra: float) -> tuple[np.ndarray, int]:
    """The silhouette laid onto the ground in front of its contact row (a low sun behind the
    camera's side): alpha ``[h + squash h + 8, w + 2 pad]`` whose row ``h - 1`` is the contact
    row, and the x padding ``pad``."""
    h, w = silhouette.shape
    pad = int(abs(shear) * squash * h) + 8
    # a point at height (h-1-y) above the ground lands (h-1-y)*squash below the contact row,
    # shifted sideways by shear times that distance
    matrix = np.float32([[1, -shear * squash, pad + shear * squash * (h - 1)],
                         [0, -squash, (h - 1) * (1 + squash)]])
    out = cv2.warpAffine(silhouette, matrix, (w + 2 * pad, int(h * (1 + squash)) + 8), flags=cv2.INTER_LINEAR)
    if penumbra > 0:
        out = cv2.GaussianBlur(out, (0, 0), penumbra)
    return out, pad


def make_clip(case: str, seed: int = 0, frames: int = 40, size: tuple[int, int] = (432, 240)) -> SyntheticClip:
    """Render one synthetic clip (see the module docstring)."""
    if case not in CASES:
        raise ValueError(f"case must be one of {CASES}")
    rng = np.random.default_rng(seed)
    w, h = size
    cw, ch = int(w * 1.8), int(h * 1.5)
    glossy = case == "reflection"
    base = (150, 140, 125) if not glossy else (170, 165, 160)
    ground = _texture(rng, ch, cw, base, 0.25 if not glossy else 0.1)
    if glossy:  # tile joints
        ground[::40, :] *= 0.7
        ground[:, ::40] *= 0.7
    ground_row = ch * (0.55 if glossy else 0.6) + rng.uniform(-10, 10)
    # static distractors: tree shadows (darker, same colour), dark paint, a parked dark object;
    # half of them along the object's path (within its reach), the rest anywhere
    def spot(i: int, margin: int) -> tuple[int, int]:
        if i % 2 == 0:
            return int(rng.integers(cw // 4, 3 * cw // 4)), int(ground_row + rng.integers(-5, 40))
        return int(rng.integers(0, cw - margin)), int(rng.integers(ch // 3, ch - margin))

    static_dark = np.ones((ch, cw), np.float32)
    for i in range(4):
        cx, cy = spot(i, 0)
        blob = np.zeros((ch, cw), np.float32)
        cv2.ellipse(blob, (int(cx), int(cy)), (int(rng.integers(20, 50)), int(rng.integers(8, 20))),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        static_dark *= 1.0 - 0.5 * cv2.GaussianBlur(blob, (0, 0), 3)
    ground *= static_dark[..., None]
    for i in range(2):
        x0, y0 = spot(i, 60)
        colour = rng.uniform(20, 50, 3)
        cv2.rectangle(ground, (x0, y0), (x0 + int(rng.integers(25, 60)), y0 + int(rng.integers(12, 25))),
                      colour.tolist(), -1)
    # the object
    if glossy:
        oh, ow = int(h * 0.35), int(h * 0.14)
        silhouette = _walker(oh, ow)
    else:
        oh, ow = int(h * 0.2), int(w * 0.2)
        silhouette = _car(oh, ow)
    look = _texture(rng, oh, ow, tuple(rng.uniform(60, 200, 3)), 0.3)
    x_start, speed = cw * 0.3, rng.uniform(3.5, 5.0) * rng.choice([-1, 1])
    if speed < 0:
        x_start = cw * 0.7 - ow
    shear = rng.uniform(0.6, 1.4) * rng.choice([-1, 1])
    shadow_alpha, pad = _cast_shadow(silhouette, shear, rng.uniform(0.4, 0.8), rng.uniform(1.5, 3.0))
    strength = rng.uniform(0.45, 0.6)
    tint = np.array([1.0, 1.0, 1.08], np.float32)  # sky light: shadows a little bluer
    out_frames, objs, shadows, refls = [], [], [], []
    cam_speed = rng.uniform(0.8, 1.6) * np.sign(speed)
    for t in range(frames):
        ox, oy = x_start + speed * t, ground_row - oh
        obj_a = _paste(ground, silhouette, ox, oy)
        obj_rgb = _paste(ground, look * silhouette[..., None], ox, oy)
        world = ground.copy()
        shadow_world = np.zeros((ch, cw), np.float32)
        refl_world = np.zeros((ch, cw), np.float32)
        if case == "shadow":
            shadow_world = _paste(ground, shadow_alpha, ox - pad, oy)
            dark = 1.0 - strength * shadow_world[..., None] * (1.0 / tint) ** 0.5
            world = world * dark
        if glossy:
            flipped = silhouette[::-1]
            fade = np.linspace(0.45, 0.15, oh, dtype=np.float32)[:, None]
            refl_world = _paste(ground, flipped, ox, oy + oh)
            refl_rgb = _paste(ground, look[::-1] * flipped[..., None], ox, oy + oh)
            fade_img = _paste(ground, np.broadcast_to(fade, (oh, ow)), ox, oy + oh)
            world = world * (1 - (refl_world * fade_img)[..., None]) + refl_rgb * fade_img[..., None]
        world = world * (1 - obj_a[..., None]) + obj_rgb
        # camera: pan following the object at another speed, a slow zoom
        cx = cw * 0.25 + cam_speed * t * 1.0 + (0 if speed > 0 else -cw * 0.05)
        cy = ch * 0.2 + 0.3 * t
        zoom = 1.0 + 0.002 * t
        matrix = np.float64([[zoom, 0, -cx * zoom], [0, zoom, -cy * zoom]])
        def view(img, interp=cv2.INTER_LINEAR):
            return cv2.warpAffine(img, matrix, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT)
        frame = view(world) + rng.normal(0, 1.5, (h, w, 3)).astype(np.float32)
        out_frames.append(np.clip(frame, 0, 255).round().astype(np.uint8))
        obj_f = view(obj_a) > 0.5
        objs.append(obj_f)
        shadows.append((view(shadow_world) > 0.5) & ~obj_f)
        refls.append((view(refl_world) > 0.5) & ~obj_f)
    return SyntheticClip(np.stack(out_frames), np.stack(objs), np.stack(shadows), np.stack(refls))


def write_demo(folder, seed: int = 1, frames: int = 40) -> tuple:
    """Write the demo workflow's inputs: ``vanish_shadow_demo.mp4`` and its object mask video.

    Run ``python bench/effects_clips.py`` to remake ``examples/`` (H.264, a few hundred KB).
    """
    from pathlib import Path

    import av

    clip = make_clip("shadow", seed, frames)
    paths = []
    for name, video in (("vanish_shadow_demo.mp4", clip.frames),
                        ("vanish_shadow_demo_mask.mp4", np.repeat(clip.objects[..., None] * 255, 3, -1).astype(np.uint8))):
        path = Path(folder) / name
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
            stream.options = {"crf": "23"}
            for frame in video:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode(None))
        paths.append(path)
    return tuple(paths)


if __name__ == "__main__":
    from pathlib import Path

    out = Path(__file__).resolve().parents[1] / "examples"
    out.mkdir(exist_ok=True)
    for written in write_demo(out):
        print("wrote", written, written.stat().st_size, "bytes")
