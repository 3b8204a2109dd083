"""Write the template browser's thumbnails: ``workflows/<name>.jpg`` beside each ``<name>.json``.

ComfyUI's frontend lists a custom node's ``workflows/*.json`` as templates, titled with the file
name, and shows ``<name>.jpg`` from the same folder as the card's picture. Each picture here is the
workflow's result, really computed by the pack's nodes on the synthetic scene of
``bench/demo_remove.py`` (a panning textured background with a red ball; our own footage, so no
licence ties the pictures): a before/after split for the removals, the cut-out subject on a
checkerboard, and the subject in front of another background. Run after renaming or adding a
workflow; ``--check`` only says which thumbnails are missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
WORKFLOWS = ROOT / "workflows"
SIZE = (384, 288)  # 4:3; cards crop to their own shape around the centre, where the split is
FRAMES = 10
SHOWN = 6  # the frame pictured
JPEG_QUALITY = 82


def _nodes():
    from _common import import_pack

    import_pack()
    from vanish.nodes.compositing import VanishCompositeFrames
    from vanish.nodes.inpainting import NO_FILE, VanishProPainterInpaint, VanishProPainterModelLoader
    from vanish.nodes.masks import VanishMaskDilateBlur

    return VanishCompositeFrames, VanishProPainterInpaint, VanishProPainterModelLoader, VanishMaskDilateBlur, NO_FILE


def scene(base: Path) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Frames with the ball [T,H,W,3] 0..1, its masks [T,H,W], and the true background (uint8)."""
    from demo_remove import make_clip

    truth = make_clip(base, FRAMES, *SIZE)
    read = lambda folder, flag: np.stack([cv2.imread(str(p), flag) for p in sorted((base / folder).glob("*.png"))])
    frames = torch.from_numpy(read("frames", cv2.IMREAD_COLOR)[..., ::-1].copy()).float() / 255
    masks = torch.from_numpy(read("masks", cv2.IMREAD_GRAYSCALE)).float() / 255
    return frames, masks, truth


def remove(frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The removal graph's nodes with the weights-free backend: dilate -> fill -> composite."""
    composite, inpaint, loader, dilate, no_file = _nodes()
    soft, hard, _ = dilate().refine(masks, grow=3, shape="disk", fill_holes=False, min_island_area=0,
                                    feather=1.0, temporal_sigma=0.0, invert=False)
    (model,) = loader().load(no_file, no_file, no_file, no_file, "fp32", "cpu")
    filled, _used, crop = inpaint().inpaint(
        frames, hard, model, mask_dilation=4, flow_mask_dilation=-1, neighbor_length=10, ref_stride=10,
        subvideo_length=80, raft_iter=20, size_mode="scale", scale=1.0, long_side=960, crop="auto",
        crop_margin=32, segment_length=0)
    (result,) = composite().composite(frames, filled, soft, False, 16, crop)
    return result


def _u8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().byte().numpy()


def _label(image: np.ndarray, text: str, x: int, y: int) -> None:
    """White text on a dark box (baseline at y)."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    box = image[max(y - h - 5, 0):y + base + 3, max(x - 4, 0):x + w + 4]
    box[:] = (box * 0.35).astype(np.uint8)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)


def split(before: np.ndarray, after: np.ndarray, mask: np.ndarray, note: str) -> np.ndarray:
    """Before left, after right, split through the middle of the masked area; its outline left."""
    ys, xs = np.nonzero(mask > 0.5)
    cut = int(xs.mean()) if len(xs) else before.shape[1] // 2
    out = after.copy()
    out[:, :cut] = before[:, :cut]
    contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    right = np.zeros_like(mask, np.uint8)
    right[:, cut:] = 1
    outline = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(outline, contours, -1, 1, 2, cv2.LINE_AA)
    out[(outline > 0) & (right > 0)] = (255, 230, 0)
    out[:, max(cut - 1, 0):cut + 1] = 255
    _label(out, "before", 10, 24)
    _label(out, "after", out.shape[1] - 56, 24)
    _label(out, note, 10, out.shape[0] - 12)
    return out


def shadow_removal() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shadow workflow's own clip (examples/): frame, object + effects mask, removal with them."""
    from vanish.nodes.ops.effects.detect import find_effects

    def read(name: str) -> np.ndarray:
        capture = cv2.VideoCapture(str(ROOT / "examples" / name))
        frames = []
        while len(frames) < 3 * FRAMES:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[..., ::-1])
        capture.release()
        return np.stack(frames)

    clip = read("vanish_shadow_demo.mp4")
    objects = read("vanish_shadow_demo_mask.mp4")[..., 0] > 127
    grown = objects | (find_effects(clip, objects) > 0)
    frames = torch.from_numpy(clip.copy()).float() / 255
    result = remove(frames, torch.from_numpy(grown.astype(np.float32)))
    t = len(clip) // 2
    return clip[t], grown[t].astype(np.float32), _u8(result[t])


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    board = np.where(((ys // cell) + (xs // cell)) % 2 == 0, 200, 150).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def thumbnails(base: Path) -> dict[str, np.ndarray]:
    """name -> RGB picture, for every workflow of tests/make_workflows.py."""
    from make_workflows import GRAPHS, TITLES

    frames, masks, truth = scene(base / "scene")
    t = SHOWN
    object_removed = _u8(remove(frames, masks)[t])
    # a fixed "logo" region: the same disc on every frame, removed with a static mask
    logo = np.zeros(masks.shape[1:], np.float32)
    cv2.circle(logo, (SIZE[0] * 2 // 3, SIZE[1] // 3), SIZE[1] // 8, 1.0, -1, cv2.LINE_AA)
    background = torch.from_numpy(truth).float() / 255
    stamped = background * (1 - torch.from_numpy(logo)[None, ..., None] * 0.8) + \
        torch.from_numpy(logo)[None, ..., None] * 0.8 * torch.tensor([0.95, 0.95, 0.95])
    region_removed = _u8(remove(stamped, torch.from_numpy(logo)[None].expand(FRAMES, -1, -1).contiguous())[t])
    mask_t = masks[t].numpy()
    alpha = cv2.GaussianBlur(mask_t, (0, 0), 1.0)[..., None]
    subject = _u8(frames[t])
    sky = np.linspace([40, 90, 170], [250, 190, 120], SIZE[1]).astype(np.float32)[:, None, :]
    hills = (np.sin(np.arange(SIZE[0]) / 23.0) * 18 + SIZE[1] * 0.7).astype(int)
    new_bg = np.repeat(sky, SIZE[0], axis=1)
    for x, top in enumerate(hills):
        new_bg[top:, x] = (50, 120, 60)
    pictures = {
        "remove_object": split(subject, object_removed, mask_t, "SAM 2 + ProPainter"),
        "remove_object_streaming": split(subject, object_removed, mask_t, "one streaming node, any length"),
        "remove_region": split(_u8(stamped[t]), region_removed, logo, "fixed region, ProPainter"),
        "remove_region_no_weights": split(_u8(stamped[t]), region_removed, logo, "no weights: flow_fill"),
        "transparent_subject": (subject * alpha + checkerboard(SIZE[1], SIZE[0]) * (1 - alpha)).astype(np.uint8),
        "replace_background": (subject * alpha + new_bg * (1 - alpha)).astype(np.uint8),
    }
    shadow_frame, shadow_mask, shadow_removed = shadow_removal()
    height, width = shadow_frame.shape[:2]
    grow = lambda image, flag: cv2.resize(image, (round(width * SIZE[1] / height), SIZE[1]), interpolation=flag)
    pictures["remove_object_with_shadow"] = split(grow(shadow_frame, cv2.INTER_CUBIC), grow(shadow_removed, cv2.INTER_CUBIC),
                                                  grow(shadow_mask, cv2.INTER_NEAREST), "object + its shadow, no weights")
    _label(pictures["transparent_subject"], "alpha video", 10, SIZE[1] - 12)
    _label(pictures["replace_background"], "new background", 10, SIZE[1] - 12)
    missing = set(GRAPHS) - set(TITLES) | set(TITLES) - set(pictures)
    if missing:
        raise KeyError(f"no thumbnail recipe for {sorted(missing)}: add one to tests/make_thumbnails.py")
    return {TITLES[key]: pictures[key] for key in GRAPHS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a workflow has no thumbnail")
    args = parser.parse_args(argv)
    if args.check:
        missing = [p for p in sorted(WORKFLOWS.glob("*.json")) if not p.with_suffix(".jpg").is_file()]
        for path in missing:
            print(f"no thumbnail for {path.name}", file=sys.stderr)
        return 1 if missing else 0
    with tempfile.TemporaryDirectory(prefix="vanish_thumbs_") as tmp:
        os.environ["VANISH_BASE_DIR"] = tmp
        for title, rgb in thumbnails(Path(tmp)).items():
            path = WORKFLOWS / f"{title}.jpg"
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
            if not ok:
                raise RuntimeError(f"could not encode {path.name}")
            path.write_bytes(data.tobytes())
            print(f"wrote {path} ({len(data) / 1024:.1f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
