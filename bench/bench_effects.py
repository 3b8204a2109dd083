"""Effects Mask (issue 12): accuracy on synthetic clips with known truth, real clips, speed.

1. **Synthetic** (``effects_clips.py``: textured ground, moving camera, static distractors):
   effects IoU with the true shadow (case ``shadow``, effects "shadow") and the true reflection
   (case ``reflection``, effects "reflection"), pooled over every frame of every seed (sums of
   intersections over sums of unions); false effects area on ``distractors`` clips (the object
   casts nothing; effects "shadow + reflection"), mean and worst frame, in % of the frame.
   Bars: IoU >= 0.8 (shadow), >= 0.6 (reflection); false area <= 3 %.
2. **Speed** at 432x240 on the synthetic shadow clip: the effects stage vs the flow_fill
   backend, seconds per frame, measured one after the other in this process. Bar: <= 25 %.
3. **Real clips** (``davis/car-shadow``, ``davis/drift-straight``, resized to 432x240, their
   annotated object masks): through the nodes (Effects Mask -> Mask Dilate & Blur -> ProPainter
   Inpaint with flow_fill -> Composite Frames), without and with the effects stage. The region
   the effects add (the filled mask with effects minus the one without) is compared with its ring
   (pixels within 12 px of that region, at least 4 px from object and effects): mean luminance ratio region / ring in the original, after
   removal without effects and after removal with effects. 1.0 = as bright as the road around.
   Contact sheets go to ``docs/img/effects_<clip>.png``.

Usage: python bench/bench_effects.py [--seeds 3] [--skip-real] [--skip-speed]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from shared_paths import CLIPS_DIR  # noqa: E402

from _common import header, import_pack  # noqa: E402

import_pack()
import torch  # noqa: E402

import effects_clips  # noqa: E402
from vanish.nodes.compositing import VanishCompositeFrames  # noqa: E402
from vanish.nodes.effects import VanishEffectsMask  # noqa: E402
from vanish.nodes.inpainting import VanishProPainterInpaint, VanishProPainterModelLoader  # noqa: E402
from vanish.nodes.masks import VanishMaskDilateBlur  # noqa: E402
from vanish.nodes.ops import flow_fill  # noqa: E402
from vanish.nodes.ops.effects import EffectsSettings, find_effects  # noqa: E402

SIZE = (432, 240)
MODES = {"shadow": "shadow", "reflection": "reflection", "distractors": "shadow + reflection"}
DILATE = {"grow": 4, "feather": 1.5}
SHEET_TILE = (288, 160)


def synthetic(seeds: int) -> None:
    print("\n## synthetic clips (40 frames, 432x240)")
    print("| case | seed | IoU | false area % mean / worst frame | effects ms/frame |")
    print("|---|---|---|---|---|")
    for case, mode in MODES.items():
        inter = union = 0
        false_means, false_worst = [], []
        for seed in range(seeds):
            clip = effects_clips.make_clip(case, seed)
            start = time.perf_counter()
            found = find_effects(clip.frames, clip.objects, EffectsSettings(effects=mode))
            per_frame = (time.perf_counter() - start) / len(clip.frames)
            truth = clip.shadow if case == "shadow" else clip.reflection
            i, u = int((found & truth).sum()), int((found | truth).sum())
            inter, union = inter + i, union + u
            false = (found & ~truth).mean((1, 2)) * 100
            false_means.append(false.mean())
            false_worst.append(false.max())
            iou = f"{i / u:.3f}" if u else "n/a (no truth)"
            print(f"| {case} | {seed} | {iou} | {false.mean():.3f} / {false.max():.3f} | {per_frame * 1000:.0f} |")
        pooled = f"{inter / union:.3f}" if union else "n/a"
        print(f"| **{case} pooled** | {seeds} seeds | **{pooled}** | {np.mean(false_means):.3f} / "
              f"{np.max(false_worst):.3f} | |")


def speed() -> None:
    print("\n## speed at 432x240 (synthetic shadow clip, 40 frames)")
    clip = effects_clips.make_clip("shadow", 0)
    start = time.perf_counter()
    find_effects(clip.frames, clip.objects, EffectsSettings())
    effects_s = (time.perf_counter() - start) / len(clip.frames)
    start = time.perf_counter()
    flow_fill.flow_fill_inpaint(clip.frames, clip.objects | effects_clips.make_clip("shadow", 0).shadow)
    fill_s = (time.perf_counter() - start) / len(clip.frames)
    print(f"effects {effects_s * 1000:.0f} ms/frame, flow_fill {fill_s * 1000:.0f} ms/frame, "
          f"ratio {effects_s / fill_s:.3f} (bar <= 0.25)")


def _load_davis(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    folder = CLIPS_DIR / "davis" / name
    frames, masks = [], []
    for path in sorted((folder / "frames").glob("*.jpg")):
        bgr = cv2.resize(cv2.imread(str(path)), SIZE, interpolation=cv2.INTER_AREA)
        frames.append(bgr[:, :, ::-1])
        mask = cv2.imread(str(folder / "masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE)
        masks.append(cv2.resize(mask, SIZE, interpolation=cv2.INTER_AREA) > 127)
    image = torch.from_numpy(np.stack(frames).copy()).float() / 255.0
    return image, torch.from_numpy(np.stack(masks)).float()


def _defaults(cls) -> dict:
    spec = cls.INPUT_TYPES()
    out = {}
    for name, decl in {**spec["required"], **spec.get("optional", {})}.items():
        if len(decl) > 1 and isinstance(decl[1], dict) and "default" in decl[1]:
            out[name] = decl[1]["default"]
    return out


def remove(image: torch.Tensor, mask: torch.Tensor, enabled: bool) -> dict:
    """Effects Mask -> Mask Dilate & Blur -> flow_fill -> Composite Frames, through the nodes."""
    start = time.perf_counter()
    grown, effects, preview, _ = VanishEffectsMask().find(image, mask, "shadow", 0.5, 96, enabled=enabled)
    effects_s = time.perf_counter() - start
    soft, hard, _ = VanishMaskDilateBlur().refine(**(_defaults(VanishMaskDilateBlur) | DILATE | {"mask": grown}))
    (model,) = VanishProPainterModelLoader().load(**(_defaults(VanishProPainterModelLoader)
                                                     | {"backend": "flow_fill (no weights)"}))
    start = time.perf_counter()
    filled, used, crop = VanishProPainterInpaint().inpaint(**(_defaults(VanishProPainterInpaint)
                                                            | {"images": image, "mask": hard, "model": model}))
    fill_s = time.perf_counter() - start
    (result,) = VanishCompositeFrames().composite(**(_defaults(VanishCompositeFrames)
                                                     | {"original": image, "fill": filled, "mask": soft,
                                                        "crop": crop}))
    return {"result": result, "effects": effects > 0.5, "hard": hard > 0.5, "preview": preview,
            "effects_s": effects_s, "fill_s": fill_s}


def _grow(masks: torch.Tensor, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in np.asarray(masks)])


def _luma(image: torch.Tensor) -> np.ndarray:
    return (image.numpy() * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1) * 255.0


def real(name: str) -> None:
    image, mask = _load_davis(name)
    without = remove(image, mask, enabled=False)
    with_fx = remove(image, mask, enabled=True)
    added = with_fx["hard"].numpy() & ~without["hard"].numpy()  # what the effects stage adds to the fill
    fx_obj = with_fx["effects"].numpy() | (mask.numpy() > 0.5)
    ring = _grow(added, 12) & ~_grow(fx_obj, 4)  # the ground beside the added region
    frames_with = int(added.any((1, 2)).sum())
    print(f"\n### {name} ({image.shape[0]} frames, 432x240; effects on {frames_with} frames, "
          f"added area {added.mean() * 100:.2f} % of the frame)")
    if added.any():
        print("| frames | region / ring mean luminance | region | ring |")
        print("|---|---|---|---|")
        for label, frames in (("original", image), ("removed without effects", without["result"]),
                              ("removed with effects", with_fx["result"])):
            y = _luma(frames)
            region, around = float(y[added].mean()), float(y[ring & ~added].mean())
            print(f"| {label} | {region / around:.3f} | {region:.1f} | {around:.1f} |")
    n = image.shape[0]
    print(f"time per frame: effects {with_fx['effects_s'] / n * 1000:.0f} ms, flow_fill "
          f"{with_fx['fill_s'] / n * 1000:.0f} ms (ratio {with_fx['effects_s'] / with_fx['fill_s']:.3f})")
    contact_sheet(name, image, mask, with_fx, without)


def _tile(image: np.ndarray, text: str) -> np.ndarray:
    tile = cv2.resize(np.ascontiguousarray(image), SHEET_TILE, interpolation=cv2.INTER_AREA)
    tile = (np.clip(tile, 0, 1) * 255).round().astype(np.uint8)[:, :, ::-1].copy()
    cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(name: str, image, mask, with_fx, without) -> None:
    rows = []
    for t in np.linspace(0, image.shape[0] - 1, 3).round().astype(int):
        grey = lambda m: np.repeat(np.asarray(m, np.float32)[..., None], 3, -1)  # noqa: E731
        rows.append(np.hstack([
            _tile(image[t].numpy(), f"original {t}"), _tile(grey(mask[t] > 0.5), "object mask"),
            _tile(with_fx["preview"][t].numpy(), "effects (cyan)"),
            _tile(without["result"][t].numpy(), "removed, no effects"),
            _tile(with_fx["result"][t].numpy(), "removed with effects")]))
    out = ROOT / "docs" / "img" / f"effects_{name}.png"
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"contact sheet: {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--clips", nargs="*", default=["car-shadow", "drift-straight"])
    args = parser.parse_args()
    print(header("bench_effects.py (issue 12)"))
    synthetic(args.seeds)
    if not args.skip_speed:
        speed()
    if not args.skip_real:
        print("\n## real clips through the nodes (flow_fill)")
        for name in args.clips:
            real(name)
    print(f"\nload average at the end: {__import__('os').getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
