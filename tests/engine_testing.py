"""Shared helpers for the streaming-engine tests: tiny clips on disk and the in-RAM node graph.

Clips are made here (a textured background drifting sideways, a square crossing it) and written
with the pack's own encoder: the source as H.264 (key frames and B-frames, so window reads really
seek) with a sound track, the mask as lossless FFV1. Outputs are written as FFV1 (lossless RGB),
so the test compares the engine's pixels, not a codec's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FPS = 25.0


@dataclass
class Clip:
    video: Path
    mask: Path
    frames: np.ndarray  # [T, H, W, 3] uint8 as written (the video is lossy: decode it to compare)


def make_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w + t, 3)).astype(np.float32)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 2.0) * 1.6 - 80
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        shift = i  # background drifts one pixel a frame
        frame = np.clip(base[:, shift:shift + w], 0, 255)
        y, x = h // 3, (w // 6 + 2 * i) % (w - h // 3)
        frame[y:y + h // 3, x:x + h // 3] = (230, 40, 40)  # the object
        out[i] = frame.astype(np.uint8)
    return out


def make_masks(t: int, h: int, w: int) -> np.ndarray:
    masks = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        y, x = h // 3, (w // 6 + 2 * i) % (w - h // 3)
        masks[i, y:y + h // 3, x:x + h // 3] = 255
    return masks


def make_clip(folder: Path, t: int = 24, h: int = 48, w: int = 64, audio: bool = True) -> Clip:
    from vanish.nodes.ops import video_encode as ve
    from vanish.nodes.ops.video_audio import AudioClip

    folder.mkdir(parents=True, exist_ok=True)
    frames = make_frames(t, h, w)
    sound = None
    if audio:
        rate = 16000
        n = int(rate * t / FPS)
        sound = AudioClip(np.sin(np.arange(n) / rate * 2 * np.pi * 440)[None].astype(np.float32) * 0.3, rate)
    video = ve.encode_video(folder / "clip.mp4", frames, FPS, "h264-mp4", crf=18, audio=sound)
    mask = ve.encode_video(folder / "mask.mkv", make_masks(t, h, w), FPS, "ffv1-mkv")
    return Clip(video, mask, frames)


def decode_all(path: Path) -> np.ndarray:
    from vanish.nodes.engine import open_source

    source = open_source(path)
    try:
        return source.read(0, source.num_frames)
    finally:
        source.close()


def node_graph(clip: Clip, mask_options, run_settings, model) -> np.ndarray:
    """Load Video Frames -> Mask Dilate & Blur -> ProPainter Inpaint -> Composite Frames, in RAM.

    Returns the composite as uint8 with Save Video's rounding.
    """
    from dataclasses import asdict

    from vanish.nodes.compositing import VanishCompositeFrames
    from vanish.nodes.inpainting import VanishProPainterInpaint
    from vanish.nodes.masks import VanishMaskDilateBlur
    from vanish.nodes.ops.video_frames import TensorFrames
    from vanish.nodes.video_io import LoadVideoFrames

    frames, mask, *_ = LoadVideoFrames().load("", 0, 0, 1, 0.0, 0, 0, path=str(clip.video),
                                                    mask_path=str(clip.mask),
                                                    mask_threshold=mask_options.threshold)
    m = mask_options
    soft, hard, _ = VanishMaskDilateBlur().refine(mask, m.grow, m.shape, m.fill_holes, m.min_island_area,
                                                  m.feather, m.temporal_sigma, m.invert)
    s = asdict(run_settings)
    filled, _, crop = VanishProPainterInpaint().inpaint(
        frames, hard, model, s["mask_dilation"], s["flow_mask_dilation"], s["neighbor_length"], s["ref_stride"],
        s["subvideo_length"], s["raft_iter"], s["size_mode"], s["scale"], s["long_side"], s["crop"],
        s["crop_margin"], s["segment_length"])
    out, = VanishCompositeFrames().composite(frames, filled, soft, False, 16, crop)
    encoder_view = TensorFrames(out)
    node_graph.last_crop = crop  # what the inpaint node processed (tests check that crops happen)
    return np.stack([encoder_view[i] for i in range(len(encoder_view))]), soft.numpy()


def random_propainter(device: str = "cpu"):
    """``propainter_core.ProPainterModels`` with seeded random weights (wiring, not quality)."""
    from vanish.propainter_core import ProPainterModels
    from vanish.propainter_core.flow_completion import FlowCompletionConfig, build_flow_completion
    from vanish.propainter_core.generator import GeneratorConfig, build_generator
    from vanish.propainter_core.raft import RaftConfig, build_raft

    torch.manual_seed(0)
    return ProPainterModels(raft=build_raft(RaftConfig()).eval(), flow_completion=build_flow_completion(
        FlowCompletionConfig()).eval(), generator=build_generator(GeneratorConfig()).eval(),
        device=torch.device(device))


def load_pack() -> None:
    """Import the pack as ``vanish`` (what conftest does), for spawned child processes."""
    import importlib.util
    import sys

    from shared_paths import ROOT

    if "vanish" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("vanish", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["vanish"] = module
    spec.loader.exec_module(module)


def small_settings(window: int = 4, context: int = 2, backend: str = "flow_fill", **inpaint):
    """Fast settings for resume/Ray tests: many short segments with little context."""
    from vanish.nodes import engine

    return engine.RemovalSettings(inpaint=engine.RunSettings(backend=backend, **inpaint),
                                  mask=engine.MaskOptions(grow=2, feather=1.0, temporal_sigma=1.0),
                                  output=engine.OutputOptions(format="ffv1-mkv"), window=window, context=context)


def child_removal(video: str, mask: str, output: str, work: str, delay: float) -> None:
    """A removal run in a spawned child (only strings cross the process boundary); each progress
    report sleeps ``delay`` seconds so the parent can kill it between segments."""
    import time

    load_pack()
    from vanish.nodes import engine

    engine.run_removal(video, output, small_settings(), masks=mask, work_dir=work,
                       progress=lambda done, total: time.sleep(delay))


def child_disk_full(video: str, mask: str, output: str, limit: int, queue) -> None:
    """Run with a file-size limit (the 'disk full' of a child); report the error text."""
    import resource
    import signal

    load_pack()
    from vanish.nodes import engine

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        engine.run_removal(video, output, small_settings(), masks=mask)
        queue.put("no error")
    except engine.EngineError as exc:
        queue.put(f"EngineError: {exc}")
    except BaseException as exc:  # noqa: BLE001 - the test reports what came instead
        queue.put(f"{type(exc).__name__}: {exc}")
