"""``vanish``: the command line, one of the three front doors of the removal engine.

ComfyUI-free (it imports the engine and ``nodes/ops`` only). Run it through the launcher at the
pack root, ``./vanish`` (sets up ``.venv`` when missing), or ``.venv/bin/python . <args>`` from
the pack root (``__main__.py`` imports the pack as package ``vanish`` and calls :func:`main`)::

    ./vanish                                   # the embedded demo (flow_fill, generated clip)
    ./vanish remove clip.mp4 --click 320,200 --sam2 sam2.1_hiera_small.pt
    ./vanish remove clip.mp4 --mask logo.png --out clean.mp4

Exit codes: 0 done, 1 a job failed, 2 bad arguments (checked before anything is written),
130 stopped by Ctrl-C (the partial output is removed, the work folder kept for resume).
"""
from __future__ import annotations

import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from .cli_args import UsageError, build_parser
from .cli_jobs import Job, plan_jobs, usage_from_engine

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MODEL_FILES = {"raft": "raft-things.pth", "flow_completion": "recurrent_flow_completion.pth",
               "generator": "ProPainter.pth"}
PROPAINTER_RELEASE = "https://github.com/sczhou/ProPainter/releases/tag/v0.1.0"
SAM2_DOWNLOAD = "https://github.com/facebookresearch/sam2#model-description"


class Interrupt:
    """Ctrl-C as a cancel request: the first one asks the engine to stop (it does within 2 s and
    cleans up); a second one stops at once. Installed only from the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:  # the engine's should_cancel
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nvanish: stopping (Ctrl-C again to stop at once) ...", file=sys.stderr, flush=True)

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class ProgressBar:
    """A tqdm bar on stderr driven by the engine's ``progress(done, total)``."""

    def __init__(self, label: str, quiet: bool) -> None:
        self._bar = None
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=1, desc=label, unit="step", file=sys.stderr, mininterval=0.5,
                             dynamic_ncols=True, leave=True)

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
            self._bar.n = min(done, total or done)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _engine():
    from . import engine

    return engine


# --------------------------------------------------------------------------- settings and models
def resolve_device(text: str):
    """``auto`` -> cuda, mps or cpu; anything else checked against what this machine has."""
    import torch

    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError("--device", f"{text!r} is not a device.", "use auto, cpu, cuda, cuda:1 or mps.") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UsageError("--device", f"{text} is not available (CUDA GPUs visible: "
                         f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}).",
                         "use --device cpu, or auto.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError("--device", f"{text} is not supported.", "use auto, cpu, cuda or mps.")
    return device


def removal_settings(args, engine):
    """The engine's RemovalSettings from the arguments (unset options keep the engine's defaults)."""
    from .ops.inpaint_runner import RunSettings

    inpaint = {"backend": args.backend, "crop": args.crop, "flow_fill_second_draw": args.second_draw}
    if args.long_side is not None:
        inpaint.update(size_mode="long side", long_side=args.long_side)
    elif args.scale is not None:
        inpaint["scale"] = args.scale
    if args.segment_length is not None:
        inpaint["segment_length"] = args.segment_length
    mask = {name: getattr(args, name) for name in ("grow", "feather", "temporal_sigma", "threshold")
            if getattr(args, name) is not None}
    return engine.RemovalSettings(inpaint=RunSettings(**inpaint), mask=engine.MaskOptions(**mask),
                                  output=engine.OutputOptions(format=args.format, crf=args.crf,
                                                              audio=args.audio))


def check_model_arguments(args, needs_sam2: bool) -> None:
    """--sam2 and --models are present and hold files (before any clip is touched)."""
    if needs_sam2:
        if args.sam2 is None:
            raise UsageError("--sam2", "is needed for --click, --box and --prompts (SAM 2 tracks the object).",
                             f"download a checkpoint such as sam2.1_hiera_small.pt ({SAM2_DOWNLOAD}) and "
                             "give --sam2 PATH, or give a --mask instead.")
        if not args.sam2.is_file():
            raise UsageError("--sam2", f"{args.sam2} does not exist or is not a file.",
                             "give the path of a SAM 2 checkpoint (.pt or .safetensors).")
    if args.backend == "propainter":
        if args.models is None or not args.models.is_dir():
            raise UsageError("--models", "must be the folder with the ProPainter files for --backend propainter"
                             + ("" if args.models is None else f" ({args.models} is not a folder)") + ".",
                             f"download {', '.join(MODEL_FILES.values())} from {PROPAINTER_RELEASE} into a "
                             "folder and give --models FOLDER, or use --backend flow_fill (no weights).")
        missing = [name for name in MODEL_FILES.values() if not (args.models / name).is_file()]
        if missing:
            raise UsageError("--models", f"{args.models} lacks {', '.join(missing)}.",
                             f"download them from {PROPAINTER_RELEASE} into {args.models}.")
    elif args.models is not None:
        raise UsageError("--models", "is only used with --backend propainter.",
                         "add --backend propainter, or drop --models.")


def load_models(args, device, needs_sam2: bool):
    """``(sam2 handle or None, ProPainter models or None)``; bad files are usage errors."""
    sam2 = networks = None
    if needs_sam2:
        from .ops import sam2_loader

        try:
            sam2 = sam2_loader.load_sam2(args.sam2, "auto", device)
        except sam2_loader.CheckpointError as exc:
            raise UsageError("--sam2", exc.problem, exc.fix) from None
    if args.backend == "propainter":
        from ..propainter_core import load_models as load_propainter
        from ..propainter_core.checkpoints import CheckpointError

        try:
            networks = load_propainter(**{net: args.models / name for net, name in MODEL_FILES.items()},
                                       device=device)
        except CheckpointError as exc:
            raise UsageError("--models", f"a model file could not be used: {exc}",
                             f"use the official files from {PROPAINTER_RELEASE}.") from None
    return sam2, networks


# --------------------------------------------------------------------------- remove
def run_job(engine, job: Job, settings, models, device, args, interrupt: Interrupt):
    """One clip through the engine; the bar shows its progress."""
    sam2, networks = models
    bar = ProgressBar(job.label, args.quiet)
    try:
        return engine.run_removal(job.source, job.out, settings, prompts=job.prompts, masks=job.mask,
                                  sam2=sam2, inpaint_models=networks, device=device,
                                  work_dir=job.work_dir, ray_address=args.ray, progress=bar,
                                  should_cancel=interrupt)
    finally:
        bar.close()


def command_remove(args, interrupt: Interrupt) -> int:
    engine = _engine()
    jobs, args.format = plan_jobs(args, engine)
    needs_sam2 = any(job.prompts is not None for job in jobs)
    check_model_arguments(args, needs_sam2)
    device = resolve_device(args.device)
    settings = removal_settings(args, engine)
    models = load_models(args, device, needs_sam2)
    if args.ray and len(jobs) > 1:  # the clips of a batch side by side, one Ray task each
        return remove_batch_on_ray(engine, jobs, settings, models, device, args, interrupt)
    failures: list[bool] = []  # True: bad input found late (exit 2 when all are)
    for number, job in enumerate(jobs, start=1):
        if len(jobs) > 1:
            print(f"[{number}/{len(jobs)}] {job.clip}", file=sys.stderr)
        try:
            started = time.perf_counter()
            result = run_job(engine, job, settings, models, device, args, interrupt)
        except engine.Cancelled:
            print(f"vanish: stopped by Ctrl-C; the partial output was removed and the work folder "
                  f"{job.work_dir} kept: run the same command again to resume.", file=sys.stderr)
            return EXIT_INTERRUPTED
        except engine.EngineError as exc:
            print(usage_from_engine(exc, "CLIP"), file=sys.stderr)
            failures.append(True)
            continue
        except (OSError, RuntimeError, ValueError, MemoryError) as exc:
            logger.debug("job %s failed", job.clip, exc_info=True)
            print(f"vanish remove: {job.clip} failed: {exc}\nThe work folder {job.work_dir} is kept: "
                  "run the same command again to resume.", file=sys.stderr)
            failures.append(False)
            continue
        if job.default_work:  # our hidden work folder beside the output: its segments are in the result
            shutil.rmtree(job.work_dir, ignore_errors=True)
        reused = f", {result.segments_reused} segment(s) reused" if result.segments_reused else ""
        for note in getattr(result, "notes", []) or []:
            logger.info("%s: %s", job.clip.name, note)
        print(f"{result.output}  ({result.frames} frames, {time.perf_counter() - started:.1f} s{reused})")
    if not failures:
        return EXIT_OK
    return EXIT_USAGE if all(failures) else EXIT_FAILED


def remove_batch_on_ray(engine, jobs: list[Job], settings, models, device, args, interrupt: Interrupt) -> int:
    """The engine's batch on Ray: one task per clip (its SAM 2 pass and segments as tasks of their own)."""
    root = args.work_dir.expanduser() if args.work_dir is not None else jobs[0].out.parent / ".vanish-work"
    batch = [engine.BatchJob(job.source, job.out, masks=job.mask, prompts=job.prompts, settings=settings)
             for job in jobs]
    bar = ProgressBar(f"{len(jobs)} clips on Ray", args.quiet)
    try:
        results = engine.run_batch(batch, sam2=models[0], inpaint_models=models[1], device=device, work_dir=root,
                                   ray_address=args.ray, progress=bar, should_cancel=interrupt)
    finally:
        bar.close()
    failures = 0
    for result in results:
        if isinstance(result, engine.EngineError):
            print(usage_from_engine(result, "CLIP"), file=sys.stderr)
            failures += 1
        else:
            print(f"{result.output}  ({result.frames} frames)")
    if args.work_dir is None and not failures:
        shutil.rmtree(root, ignore_errors=True)
    return EXIT_OK if not failures else EXIT_USAGE


# --------------------------------------------------------------------------- demo
def command_demo(args, interrupt: Interrupt) -> int:
    """The embedded default job: a generated clip, the weights-free backend, the result's path."""
    from .ops.inpaint_runner import RunSettings
    from .ops.synthetic_clip import SyntheticScene, write_clip

    engine = _engine()
    out: Path = args.out.expanduser()
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError("--out", f"is in {parent}, which does not exist.",
                         f"create {parent} first or choose another folder.", command="demo")
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} is a file.", "give a folder.", command="demo")
    width, height = args.size
    scene = SyntheticScene(args.frames, width, height)
    out.mkdir(exist_ok=True)
    clip_dir = out / f"clip_{width}x{height}_{args.frames}"
    if not (clip_dir / "mask.mkv").is_file():
        staging = out / f".{clip_dir.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()

        def stop_if_asked() -> None:  # the first Ctrl-C, while the clip is written
            if interrupt():
                raise engine.Cancelled("the demo was cancelled while its clip was written")

        try:
            write_clip(staging, scene, check_cancel=stop_if_asked)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(clip_dir, ignore_errors=True)
        staging.rename(clip_dir)  # a clip folder is complete or absent
    source = engine.open_source(clip_dir / "clip.mp4")
    masks = engine.open_mask_source(clip_dir / "mask.mkv", like=source)
    target = next(out / f"removed_{n:05d}.mp4" for n in range(1, 100_000)
                  if not (out / f"removed_{n:05d}.mp4").exists())
    settings = engine.RemovalSettings(inpaint=RunSettings(backend="flow_fill", crop="auto"),
                                      mask=engine.MaskOptions(grow=3, feather=1.0))
    print(f"Vanish demo: removing a ball from a generated {args.frames}-frame {width}x{height} clip "
          f"({clip_dir}) with the weights-free flow_fill backend", file=sys.stderr)
    bar = ProgressBar("demo", quiet=False)
    started = time.perf_counter()
    try:
        result = engine.run_removal(source, target, settings, masks=masks, device="cpu", progress=bar,
                                    should_cancel=interrupt)
    finally:
        bar.close()
    print(f"  PSNR inside the ball vs the true background: {_psnr_inside(engine, result.output, scene):.1f} dB "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    print(f"Result: {result.output}")
    return EXIT_OK


def _psnr_inside(engine, output: Path, scene) -> float:
    """PSNR of the result against the scene's true background, inside the ball (window by window)."""
    import numpy as np

    result = engine.open_source(output)
    total, count = 0.0, 0
    for start in range(0, result.num_frames, 16):
        frames = result.read(start, min(start + 16, result.num_frames))
        for offset, frame in enumerate(frames):
            inside = scene.mask(start + offset) > 127
            diff = frame[inside].astype(np.float64) - scene.truth(start + offset)[inside]
            total, count = total + float((diff ** 2).sum()), count + diff.size
    result.close()
    return 10 * np.log10(255.0 ** 2 / max(total / max(count, 1), 1e-12))


# --------------------------------------------------------------------------- entry point
COMMANDS: dict[str | None, Callable] = {None: command_demo, "demo": command_demo, "remove": command_remove}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vanish`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with Interrupt() as interrupt:
        try:
            args = build_parser().parse_args(argv)
            if args.command is None:  # `vanish` alone: the demo with its defaults
                args = build_parser().parse_args(["demo"])
            logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                                format="vanish: %(message)s", stream=sys.stderr)
            return COMMANDS[args.command](args, interrupt)
        except UsageError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        except SystemExit as exc:  # --help
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        except KeyboardInterrupt:
            print("vanish: stopped by Ctrl-C; the partial output was removed.", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - engine Cancelled, or a failure outside the jobs
            if type(exc).__name__ == "Cancelled":
                print("vanish: stopped by Ctrl-C; the partial output was removed and the work folder "
                      "kept: run the same command again to resume.", file=sys.stderr)
                return EXIT_INTERRUPTED
            if isinstance(exc, ValueError) and hasattr(exc, "fix"):  # a VanishError/EngineError
                print(f"vanish: {exc}", file=sys.stderr)
                return EXIT_USAGE
            logger.debug("failed", exc_info=True)
            print(f"vanish: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED
