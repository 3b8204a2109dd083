"""The command line's arguments: the parser, value parsers and the one usage-error type.

ComfyUI-free. Every bad argument becomes a :class:`UsageError` that names the argument, says what
is wrong and how to fix it; :mod:`.cli` prints it and exits with code 2 before anything is written.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from .ops import video_encode as ve

PROG = "vanish"
#: Output extensions and the format each one implies when --format is not given.
FORMAT_BY_EXTENSION = {"mp4": "h264-mp4", "webm": "vp9-webm", "mov": "prores4444-mov", "mkv": "ffv1-mkv"}
_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"


class UsageError(Exception):
    """A bad command-line argument: which one, what is wrong, the fix (exit code 2)."""

    def __init__(self, argument: str | None, problem: str, fix: str | None = None,
                 command: str = "remove") -> None:
        self.argument, self.problem, self.fix = argument, problem, fix
        where = f"{PROG} {command}: " + (f"{argument}: " if argument else "")
        super().__init__(where + problem + (f"\nFix: {fix}" if fix else ""))


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (with a fix) instead of printing and exiting."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.split()[-1] if " " in self.prog else "remove"
        problem, _, fix = message.partition(" Fix: ")  # our value parsers carry their own fix
        raise UsageError(None, problem, (fix.rstrip(".") + "." if fix else None) or
                         f"see '{self.prog} --help'.", command=command)


def point(text: str) -> tuple[float, float, int | None]:
    """``"x,y"`` or ``"x,y@frame"`` -> ``(x, y, frame or None)``."""
    match = re.fullmatch(_NUMBER + "," + _NUMBER + r"(?:@\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a point. Fix: write x,y in pixels of the clip, optionally @frame "
            "(frames count from 0), e.g. --click 320,200 or --click 320,200@15")
    x, y, frame = match.groups()
    return float(x), float(y), None if frame is None else int(frame)


def box(text: str) -> tuple[tuple[float, float, float, float], int | None]:
    """``"x0,y0,x1,y1"`` or ``"x0,y0,x1,y1@frame"`` -> ``((x0, y0, x1, y1), frame or None)``."""
    match = re.fullmatch(",".join([_NUMBER] * 4) + r"(?:@\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a box. Fix: write x0,y0,x1,y1 (top-left and bottom-right corners in "
            "pixels), optionally @frame, e.g. --box 100,80,260,300@0")
    *corners, frame = match.groups()
    x0, y0, x1, y1 = (float(v) for v in corners)
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no area. Fix: give the top-left corner first and the bottom-right second "
            "(x1 > x0 and y1 > y0)")
    return (x0, y0, x1, y1), None if frame is None else int(frame)


def _bounded(kind: type, low: float | None = None, high: float | None = None, hint: str = ""):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}. Fix: {hint}") from None
        if (low is not None and value < low) or (high is not None and value > high) or value != value:
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range. Fix: give a value {span}; {hint}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def build_parser() -> argparse.ArgumentParser:
    """``vanish [demo|remove] ...`` (``vanish test`` is the launcher's: it runs pytest)."""
    parser = _Parser(prog=PROG, description=(
        "Remove an object from a video. With no command, runs the embedded demo: the weights-free "
        "flow_fill backend on a clip it makes itself, and prints where the result is."),
        epilog="Other command of the ./vanish launcher: './vanish test' runs the test suite. "
               "Exit codes: 0 done, 1 failed, 2 bad arguments (nothing written), 130 stopped by Ctrl-C.")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the engine's notes")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="{demo,remove}")
    demo = commands.add_parser("demo", help="the embedded default job (no arguments needed)",
                               description="Make a synthetic clip with a moving ball, remove the ball "
                               "with the weights-free flow_fill backend, print where the result is.")
    demo.add_argument("--out", type=Path, default=Path("vanish-demo"),
                      help="folder for the clip and the result (created if missing; its parent must "
                           "exist; default ./vanish-demo)")
    demo.add_argument("--frames", type=_bounded(int, 2, 100_000, "e.g. --frames 40"), default=40)
    demo.add_argument("--size", default="320x180", type=_size,
                      help="WIDTHxHEIGHT of the generated clip, e.g. 640x360 (default 320x180)")
    _add_remove(commands)
    return parser


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(v) for v in match.groups()) < 32 or max(int(v) for v in match.groups()) > 8192:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size. Fix: write WIDTHxHEIGHT with both sides from 32 to 8192, e.g. 320x180")
    return int(match.group(1)), int(match.group(2))


def _add_remove(commands) -> None:
    remove = commands.add_parser(
        "remove", help="remove an object from your own clip(s)",
        description="Remove an object from CLIP (a video file, a folder of numbered images, or a "
                    "folder of video files = a batch). Say what to remove with clicks or boxes (SAM 2 "
                    "tracks it; needs --sam2), a prompts JSON from the editor, or a mask.",
        epilog="Examples:\n  vanish remove clip.mp4 --click 320,200 --sam2 sam2.1_hiera_small.pt\n"
               "  vanish remove clip.mp4 --mask logo_mask.png --out clean.mp4\n"
               "  vanish remove clips/ --mask masks/ --out results/   (a batch; masks/<clip name>.*)\n"
               "  vanish remove --jobs jobs.json                      (a list of jobs)\n"
               "Ctrl-C stops cleanly and keeps the work folder: run the same command again to resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    remove.add_argument("clips", nargs="*", type=Path, metavar="CLIP",
                        help="video file(s), image folder(s), or a folder of video files")
    what = remove.add_argument_group("what to remove (clicks/boxes/prompts, or --mask)")
    what.add_argument("--click", action="append", type=point, default=[], metavar="X,Y[@F]",
                      help="a point on the object (pixels of the clip, frame F, default 0); repeat for more")
    what.add_argument("--exclude", action="append", type=point, default=[], metavar="X,Y[@F]",
                      help="a point that is NOT the object (a correction click)")
    what.add_argument("--box", action="append", type=box, default=[], metavar="X0,Y0,X1,Y1[@F]",
                      help="a box around the object on frame F (default 0)")
    what.add_argument("--prompts", type=Path, metavar="JSON",
                      help="prompts saved from the SAM 2 Video Prompt editor (several objects and frames)")
    what.add_argument("--mask", type=Path, metavar="MASK",
                      help="a mask video, image folder or ONE image (white = remove) instead of SAM 2; "
                           "for a batch folder: a folder with a mask named like each clip")
    what.add_argument("--sam2", type=Path, metavar="CKPT",
                      help="a SAM 2 / 2.1 checkpoint (.pt or .safetensors), needed for clicks, boxes, prompts")
    fill = remove.add_argument_group("inpainting")
    fill.add_argument("--backend", choices=("flow_fill", "propainter"), default="flow_fill",
                      help="flow_fill: no weights, CPU (default); propainter: the official networks (--models)")
    fill.add_argument("--models", type=Path, metavar="DIR",
                      help="folder with raft-things.pth, recurrent_flow_completion.pth and ProPainter.pth")
    fill.add_argument("--device", default="auto",
                      help="auto (a GPU when there is one), cpu, cuda, cuda:1, mps")
    fill.add_argument("--long-side", type=_bounded(int, 16, 8192, "e.g. --long-side 960"), metavar="PX",
                      help="process at this long side in pixels (the output keeps the clip's size)")
    fill.add_argument("--scale", type=_bounded(float, 0.05, 4.0, "e.g. --scale 0.5"),
                      help="process at this scale of the (cropped) frames (default 1.0)")
    fill.add_argument("--crop", choices=("auto", "off"), default="auto",
                      help="auto: process only the region around the object when it is small (default)")
    fill.add_argument("--single-draw", dest="second_draw", action="store_false",
                      help="flow_fill: one fill instead of the mean of two (half the time; on the issue-13 bench "
                           "about 0.35 dB lower)")
    fill.add_argument("--segment-length", type=_bounded(int, 0, 100_000, "e.g. --segment-length 60"),
                      metavar="N", help="frames per inpainting segment (0 = the backend's default)")
    mask = remove.add_argument_group("mask")
    mask.add_argument("--grow", type=_bounded(int, -512, 512, "e.g. --grow 8"), metavar="PX",
                      help="grow the mask by this many pixels (default 8)")
    mask.add_argument("--feather", type=_bounded(float, 0.0, 256.0, "e.g. --feather 2"), metavar="SIGMA",
                      help="soften the mask edge (Gaussian sigma in pixels, default 2)")
    mask.add_argument("--temporal-sigma", type=_bounded(float, 0.0, 30.0, "e.g. --temporal-sigma 1"),
                      metavar="FRAMES", help="steady the mask over time (default 0 = off)")
    mask.add_argument("--mask-threshold", dest="threshold", metavar="T",
                      type=_bounded(float, 0.0, 1.0, "e.g. --mask-threshold 0.5"),
                      help="for --mask: values >= T remove, the rest stay (default 0 = keep grey levels)")
    out = remove.add_argument_group("output")
    out.add_argument("--out", type=Path, metavar="PATH",
                     help="output file (one clip) or an existing folder (default: beside the clip, "
                          "<name>_removed.<ext>); never overwritten, its folder must exist")
    out.add_argument("--format", choices=list(ve.FORMATS), help="default: from --out's extension, else h264-mp4")
    out.add_argument("--crf", "--quality", dest="crf", type=_bounded(int, 0, 63, "e.g. --crf 19"),
                     default=19, help="h264/h265 0-51, vp9 0-63: lower is better and larger (default 19)")
    out.add_argument("--no-audio", dest="audio", action="store_false", help="drop the clip's sound")
    run = remove.add_argument_group("running")
    run.add_argument("--jobs", type=Path, metavar="JSON",
                     help='a list of jobs: [{"clip": "a.mp4", "mask": "m.png", "out": "a_clean.mp4"}, '
                          '{"clip": "b.mp4", "click": ["120,80@0"]}] (paths relative to the file)')
    run.add_argument("--work-dir", type=Path, metavar="DIR",
                     help="resume folder (default: a hidden folder beside the output, removed after "
                          "success and kept after Ctrl-C or a crash)")
    run.add_argument("--ray", default=os.environ.get("RAY_ADDRESS"), metavar="ADDRESS",
                     help="run the inpainting segments as Ray tasks on this cluster (default: "
                          "$RAY_ADDRESS; 'local' starts Ray on this machine)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
