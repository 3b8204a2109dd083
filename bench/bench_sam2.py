"""SAM 2 propagation: ours (lazy frames from the IMAGE tensor) against the official predictor.

The official path is what its README shows: ``init_state`` on a JPEG folder (every frame decoded,
resized to the model size and kept as float32), one click on frame 0, ``propagate_in_video``
forward. Ours runs ``track_video`` forward on the same frames already decoded into an IMAGE
tensor (as ComfyUI hands them over), with the same click and the same random tiny SAM 2.1 weights
loaded from one file. Each path runs in its own process (multiprocessing, spawn); peak memory is the highest resident
set size during the run minus the size just before it (model and decoded clip already loaded).

``--long`` also runs both on 4N frames (the clip repeated) and prints how each peak grows.

Usage: python bench/bench_sam2.py [--frames 16] [--image-size 1024] [--threads 2] [--long]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from shared_paths import CLIPS_DIR  # noqa: E402

from _common import header, import_pack, run_in_fresh_process  # noqa: E402

CLICK = (300.0, 120.0)  # on the bmx rider in frame 0 of bmx-trees (432x240)


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Highest RSS seen by a 5 ms sampler while the block runs."""

    def __enter__(self):
        self.start, self.peak, self._stop = _rss(), _rss(), False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop:
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def added(self) -> int:
        return self.peak - self.start


def clip_files(count: int) -> list[Path]:
    files = sorted((CLIPS_DIR / "bmx-trees" / "frames").glob("*.jpg"))
    return [files[i % len(files)] for i in range(count)]


def child(args: argparse.Namespace) -> dict:
    """One measured path (``args.path``) in its own process (see ``run_child``); returns its figures."""
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # the official hole filling warns on every frame without sam2._C
    import_pack()
    from vanish.nodes.ops import sam2_loader, sam2_session
    from vanish.nodes.ops.sam2_prompts import PromptSet

    files = clip_files(args.frames)
    device = torch.device(args.device)
    if args.path == "official":
        from sam2.build_sam import build_sam2_video_predictor

        folder = Path(args.workdir) / "jpeg"
        folder.mkdir(exist_ok=True)
        for i, f in enumerate(files):
            shutil.copy(f, folder / f"{i:05d}.jpg")
        predictor = build_sam2_video_predictor(
            sam2_loader.SAM2Variant("2.1", "tiny").config_name, args.checkpoint, device=str(device),
            hydra_overrides_extra=[f"++model.image_size={args.image_size}"])
        # without CUDA autocast the bf16-stored memories reach fp32 layers: the same cast we use
        predictor.memory_attention.register_forward_pre_hook(sam2_session._memory_dtype, with_kwargs=True)
        masks = []
        with PeakRSS() as peak, torch.inference_mode():
            t0 = time.perf_counter()
            state = predictor.init_state(str(folder))
            predictor.add_new_points_or_box(state, 0, 1, points=np.array([CLICK], np.float32),
                                            labels=np.array([1], np.int32))
            for _, _, logits in predictor.propagate_in_video(state):
                masks.append((logits[:, 0] > 0).cpu().numpy())
            seconds = time.perf_counter() - t0
            del state
        masks = np.stack(masks, axis=1)  # [N, T, H, W]
    else:
        images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))
        images = images.float().div_(255.0)  # IMAGE [T, H, W, 3], decoded before the run
        handle = sam2_loader.load_sam2(Path(args.checkpoint), "fp32", device, image_size=args.image_size)
        prompts = PromptSet.from_json({"objects": [{"id": 1, "frames": {"0": {"positive": [list(CLICK)]}}}]})
        with PeakRSS() as peak, handle.acquire() as predictor:
            t0 = time.perf_counter()
            result = sam2_session.track_video(predictor, images, prompts,
                                              sam2_session.TrackOptions(direction="forward"))
            seconds = time.perf_counter() - t0
        masks = result.masks.numpy()
    np.save(Path(args.workdir) / f"masks_{args.path}_{args.frames}.npy", masks)
    return {"path": args.path, "frames": args.frames, "seconds": seconds, "peak_added_mb": peak.added / 2**20}


def run_child(args, path: str, frames: int) -> dict:
    case = argparse.Namespace(**{**vars(args), "path": path, "frames": frames})
    # a fixed mmap threshold makes glibc return freed large tensors at once, so the resident
    # size follows live memory instead of the allocator's history (less noise in the peaks);
    # it is in the child's environment from its start (glibc reads it before Python runs)
    return run_in_fresh_process(child, case, env={"MALLOC_MMAP_THRESHOLD_": "131072"})


def print_header(args) -> None:
    print(header("bench_sam2", device=args.device, threads=args.threads))
    print(f"case: device {args.device}; SAM 2.1 tiny (random weights), model input {args.image_size}, "
          f"bmx-trees 432x240, {args.frames} frames, one click on frame 0, forward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--long", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        args.workdir = work
        args.checkpoint = str(Path(work) / "sam2.1_hiera_tiny.pt")
        import_pack()
        from vanish.nodes.ops import sam2_loader

        torch.manual_seed(0)
        model = sam2_loader.build_predictor(sam2_loader.SAM2Variant("2.1", "tiny"))
        torch.save({"model": model.state_dict()}, args.checkpoint)
        del model
        print_header(args)
        official = run_child(args, "official", args.frames)
        ours = run_child(args, "ours", args.frames)
        a = np.load(Path(work) / f"masks_official_{args.frames}.npy")
        b = np.load(Path(work) / f"masks_ours_{args.frames}.npy")
        iou = (a & b).sum() / max((a | b).sum(), 1)
        for r in (official, ours):
            print(f"{r['path']:>8}: {r['seconds'] / r['frames']:.3f} s/frame, peak +{r['peak_added_mb']:.0f} MB")
        print(f"ratio ours/official: time {ours['seconds'] / official['seconds']:.3f}, "
              f"peak memory {ours['peak_added_mb'] / max(official['peak_added_mb'], 1e-6):.3f}; "
              f"mask IoU ours vs official {iou:.3f} (random weights; resize differs: JPEG+PIL vs tensor)")
        if args.long:
            long_official = run_child(args, "official", 4 * args.frames)
            long_ours = run_child(args, "ours", 4 * args.frames)
            outputs = 3 * args.frames * 240 * 432 / 2**20  # the extra bool masks of 3N frames
            for short, long in ((official, long_official), (ours, long_ours)):
                print(f"{long['path']:>8} on {long['frames']} frames: {long['seconds'] / long['frames']:.3f} "
                      f"s/frame, peak +{long['peak_added_mb']:.0f} MB, growth over {short['frames']} "
                      f"frames +{long['peak_added_mb'] - short['peak_added_mb']:.0f} MB")
            print(f"peak memory ratio ours/official at {4 * args.frames} frames: "
                  f"{long_ours['peak_added_mb'] / max(long_official['peak_added_mb'], 1e-6):.3f} "
                  f"(the output masks themselves add {outputs:.1f} MB to both)")

if __name__ == "__main__":
    main()
