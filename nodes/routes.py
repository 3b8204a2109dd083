"""The ``/vanish/`` server routes behind the SAM 2 prompt editor (``web/js/vanish_prompt_editor.js``).

    GET  /vanish/video_info?file=clip.mp4&skip_first=0&cap=0&every_nth=1&force_rate=0&width=0&height=0
         -> {"width", "height", "frame_count", "fps", "kind"}   (size and count AFTER the selection)
    GET  /vanish/frame?<same>&index=N[&max_side=1280]
         -> PNG of frame N of the selected frames (what Load Video Frames would output as frame N)
    GET  /vanish/run_frames?node=<node id>
         -> {"vanish_frames": [{filename, subfolder, type}], "vanish_frame_size": [W, H]} of that
            prompt node's last run (what its "vanish.run_frames" message carried)
    GET  /vanish/run_frame?filename=...&subfolder=...
         -> a frame the prompt node wrote to the temp folder on its last run (see editor_frames)
    POST /vanish/preview  {"frame": {<frame or run_frame query>}, "prompts": <widget JSON>,
                           "index": N, "colors": {"<id>": [r, g, b]}}
         -> PNG (RGBA) overlay of each object's SAM 2 mask on that frame, at the frame's size

Every route only reads: ``file`` names are confined to ComfyUI's input folder (no ``..``, no
absolute paths, no symlink leaving the folder), run frames to the editor's temp subfolder.
Problems come back as ``{"error": ..., "fix": ...}`` with a 4xx status. The logic lives in plain
functions returning :class:`RouteResult`, so the tests need no server; :func:`register` wires them
to ``PromptServer.instance.routes`` inside ComfyUI and does nothing elsewhere.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from . import _comfy
from .ops import video_decode as vd
from .ops.editor_frames import RUN_FRAMES_SUBFOLDER, read_run_frames
from .ops.sam2_prompts import FramePrompts, PromptError, PromptSet, load_json

logger = logging.getLogger(__name__)

PREFIX = "/vanish"
MAX_INDEX = 10_000_000
MAX_SIDE_LIMIT = 16384
OVERLAY_ALPHA = 110  # of 255: the mask tint the editor draws over the frame
# same order as nodes/segmentation.py PALETTE (RGB 0..255), used when the editor sends no colours
DEFAULT_COLORS = ((255, 64, 64), (64, 153, 255), (77, 230, 77), (255, 204, 51), (217, 89, 255),
                  (51, 230, 230))
NO_MODEL = ("No SAM 2 model is loaded yet.",
            "run the graph once (SAM 2 Model Loader -> SAM 2 Propagate); the preview then reuses "
            "that model.")
_SELECTION_PARAMS = {"skip_first": (0, MAX_INDEX), "cap": (0, MAX_INDEX),
                     "every_nth": (1, 1000), "width": (0, MAX_SIDE_LIMIT), "height": (0, MAX_SIDE_LIMIT)}


class RouteError(Exception):
    """A request the routes refuse: HTTP ``status`` and a message for the editor."""

    def __init__(self, status: int, error: str, fix: str = "") -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.fix = fix


@dataclass
class RouteResult:
    """What a route answers: ``body`` is bytes (with ``content_type``) or a JSON-able dict."""

    status: int
    body: bytes | dict
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _error_result(exc: RouteError) -> RouteResult:
    body = {"error": exc.error}
    if exc.fix:
        body["fix"] = exc.fix
    return RouteResult(exc.status, body)


# --------------------------------------------------------------------------- parameters
def _int_param(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RouteError(400, f"'{name}' is {raw!r}, not a number.", f"send a whole number for {name}.") from None
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise RouteError(400, f"'{name}' is {raw!r}; it must be a whole number from {low} to {high}.",
                         f"send {name} between {low} and {high}.")
    return int(value)


def parse_selection(params: Mapping[str, Any]) -> vd.FrameSelection:
    """The loader's frame selection from query parameters (missing ones take the loader's defaults).

    Raises:
        RouteError: 400 for a value that is not a number or out of the loader's range.
    """
    values = {name: _int_param(params, name, low, low, high)
              for name, (low, high) in _SELECTION_PARAMS.items()}
    raw_rate = params.get("force_rate", 0)
    try:
        rate = float(raw_rate)
    except (TypeError, ValueError):
        rate = -1.0
    if not math.isfinite(rate) or not 0 <= rate <= 240:
        raise RouteError(400, f"'force_rate' is {raw_rate!r}; it must be a number from 0 to 240.",
                         "send the loader's force_rate (0 keeps the clip's rate).")
    return vd.FrameSelection(values["skip_first"], values["cap"], values["every_nth"], rate,
                             values["width"], values["height"])


def _confined(root: Path, name: str, what: str) -> Path:
    """``root/name`` after refusing absolute paths, ``..`` and anything resolving outside ``root``."""
    if not name or "\x00" in name:
        raise RouteError(400, f"'{what}' is empty or invalid.", "pick a file in the loader node.")
    posix = name.replace("\\", "/")
    pure = PurePosixPath(posix)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", posix) or ".." in pure.parts:
        raise RouteError(400, f"'{what}' must be a name inside ComfyUI's input folder, got {name!r}.",
                         "upload the video with the loader's widget (absolute paths and '..' are "
                         "not served; run the graph once to see those frames).")
    shown = name if len(name) <= 80 else name[:60] + f"... ({len(name)} characters)"
    base = root.resolve()
    try:
        target = (base / pure).resolve()
        exists = target.exists()
    except OSError as exc:  # a name too long for the file system, a loop of links, ...
        raise RouteError(400, f"'{what}' {shown!r} cannot be a file name here: "
                         f"{exc.strerror or exc}.", "pick a file in the loader node.") from None
    if target == base or base not in target.parents:
        raise RouteError(403, f"'{what}' {shown!r} leads outside ComfyUI's input folder.",
                         "put the video inside the input folder (links leading out are not served).")
    if not exists:
        raise RouteError(404, f"'{what}' {shown!r} does not exist in ComfyUI's input folder.",
                         "upload the video with the loader's widget, or pick another file.")
    return target


def resolve_input_file(name: Any) -> Path:
    """The file or image folder named by a loader widget, confined to the input folder.

    Accepts ``clip.mp4``, ``sub/clip.mp4`` and ``clip.mp4 [input]``.

    Raises:
        RouteError: 400 (bad name, other annotated folder), 403 (escapes), 404 (missing).
    """
    text = name.strip() if isinstance(name, str) else ""
    if text.endswith(" [input]"):
        text = text[: -len(" [input]")]
    elif re.search(r" \[(output|temp)\]$", text):
        raise RouteError(400, f"'file' {text!r} is not in ComfyUI's input folder.",
                         "copy the video into the input folder, or run the graph once to see its frames.")
    return _confined(_comfy.input_directory(), text, "file")


def _source(params: Mapping[str, Any]) -> tuple[Path, vd.VideoInfo, vd.FrameSelection, int]:
    """File, probe, selection and selected-frame count for a frame/video_info request."""
    path = resolve_input_file(params.get("file"))
    selection = parse_selection(params)
    try:
        info = vd.probe_video(path)
    except (ValueError, OSError) as exc:
        raise RouteError(422, f"'{path.name}' cannot be read as a video or image: {exc}.",
                         "pick a video (mp4, mov, mkv, webm, ...), an image or a folder of images.") from exc
    count = vd.expected_count(vd.timeline_length(info, selection), selection)
    if count < 1:
        raise RouteError(422, f"the selection leaves no frames of '{path.name}' (skip_first="
                         f"{selection.skip_first}).", "lower skip_first_frames in the loader.")
    return path, info, selection, count


# --------------------------------------------------------------------------- routes
def video_info(params: Mapping[str, Any]) -> RouteResult:
    """``GET /vanish/video_info``: size and frame count of the loader's selection."""
    try:
        _, info, selection, count = _source(params)
    except RouteError as exc:
        return _error_result(exc)
    width, height = vd.output_size(info.width, info.height, selection)
    return RouteResult(200, {"width": width, "height": height, "frame_count": count,
                             "fps": vd.output_fps(info, selection), "kind": info.kind})


def _png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB ``[H, W, 3]`` or RGBA ``[H, W, 4]`` uint8 image."""
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, code), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - cv2 always encodes uint8 PNG
        raise RouteError(500, "the frame could not be encoded as PNG.")
    return data.tobytes()


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def selected_frame(params: Mapping[str, Any]) -> np.ndarray:
    """Frame ``index`` of the loader's selection, uint8 ``[H, W, 3]``.

    Raises:
        RouteError: bad parameters, or an index outside the selected frames (404).
    """
    index = _int_param(params, "index", -1, 0, MAX_INDEX)
    path, _, selection, count = _source(params)
    missing = RouteError(404, f"frame {index} does not exist: the selection of '{path.name}' has "
                         f"{count} frames (0 to {count - 1}).", f"pick a frame from 0 to {count - 1}.")
    if index >= count:
        raise missing
    try:
        return vd.decode_single_frame(path, index, selection)
    except IndexError:
        raise missing from None
    except vd.FrameTooLarge as exc:
        raise RouteError(422, f"frame {index} of '{path.name}' cannot be shown: {exc}.",
                         "set custom_width/custom_height in the loader so the frames stay below "
                         "about 16000x16000 pixels.") from None
    except (ValueError, OSError) as exc:
        raise RouteError(422, f"frame {index} of '{path.name}' cannot be decoded: {exc}.",
                         "re-export the video, or pick another frame.") from exc


def frame_png(params: Mapping[str, Any]) -> RouteResult:
    """``GET /vanish/frame``: one selected frame as PNG (optionally shrunk to ``max_side``)."""
    try:
        max_side = _int_param(params, "max_side", 0, 0, MAX_SIDE_LIMIT)
        frame = selected_frame(params)
    except RouteError as exc:
        return _error_result(exc)
    h, w = frame.shape[:2]
    return RouteResult(200, _png(_shrink(frame, max_side)), "image/png",
                       {"X-Vanish-Frame-Size": f"{w}x{h}", "Cache-Control": "no-store"})


def run_frame_path(params: Mapping[str, Any]) -> Path:
    """A frame written by the prompt node's last run, confined to the editor's temp subfolder."""
    name = params.get("filename")
    sub = params.get("subfolder", RUN_FRAMES_SUBFOLDER)
    if (not isinstance(name, str) or not isinstance(sub, str) or "/" in name or "\\" in name
            or not name.endswith(".jpg")):
        raise RouteError(400, "'filename' must be the plain name of a stored frame (.jpg).",
                         "run the graph again.")
    if sub.replace("\\", "/").strip("/").split("/")[0] != RUN_FRAMES_SUBFOLDER:
        raise RouteError(403, f"'subfolder' {sub!r} is not the editor's frame folder.", "run the graph again.")
    path = _confined(_comfy.temp_directory(), f"{sub}/{name}", "filename")
    if not path.is_file():
        raise RouteError(404, f"{name!r} is not a file.", "run the graph again.")
    return path


def run_frames(params: Mapping[str, Any]) -> RouteResult:
    """``GET /vanish/run_frames``: the frames a prompt node stored on its last run."""
    node = params.get("node")
    if not isinstance(node, str) or not re.fullmatch(r"[0-9A-Za-z:_-]{1,64}", node):
        return _error_result(RouteError(400, "'node' must be a node id.", "update the editor (reload the page)."))
    found = read_run_frames(_comfy.temp_directory(), node)
    if found is None:
        return _error_result(RouteError(404, f"node {node} has not run since ComfyUI started.",
                                        "run the graph once, or connect Load Video Frames to 'frames'."))
    return RouteResult(200, found)


def run_frame(params: Mapping[str, Any]) -> RouteResult:
    """``GET /vanish/run_frame``: the stored JPEG of a frame from the last run."""
    try:
        path = run_frame_path(params)
    except RouteError as exc:
        return _error_result(exc)
    return RouteResult(200, path.read_bytes(), "image/jpeg", {"Cache-Control": "no-store"})


def _frame_for_preview(frame: Any) -> np.ndarray:
    if not isinstance(frame, Mapping):
        raise RouteError(400, "'frame' must describe the frame ({\"file\": ..., \"index\": ...}).",
                         "update the editor (reload the page).")
    if "filename" in frame:
        image = cv2.imread(str(run_frame_path(frame)), cv2.IMREAD_COLOR)
        if image is None:
            raise RouteError(422, "the stored frame cannot be read.", "run the graph again.")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return selected_frame(frame)


def frame_prompts(prompts: Any, index: int, width: int, height: int) -> dict[int, FramePrompts]:
    """Each object's prompts on frame ``index``, in pixels of a ``width`` x ``height`` frame.

    Raises:
        RouteError: 400 when the prompts do not parse.
    """
    try:
        prompt_set = PromptSet.from_json(prompts).scaled_to(width, height)
    except PromptError as exc:
        raise RouteError(400, f"the prompts {exc.problem}", exc.fix) from exc
    return {obj.id: obj.frames[index] for obj in prompt_set.objects
            if index in obj.frames and not obj.frames[index].is_empty()}


def overlay_rgba(masks: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    """RGBA ``[H, W, 4]`` uint8: object ``i``'s mask ``masks[i]`` tinted ``colors[i]`` (later on top)."""
    out = np.zeros(masks.shape[1:] + (4,), np.uint8)
    for mask, colour in zip(masks, colors):
        out[mask] = (*colour, OVERLAY_ALPHA)
    return out


def _colour_for(colors: Any, obj_id: int, order: int) -> tuple[int, int, int]:
    raw = colors.get(str(obj_id)) if isinstance(colors, Mapping) else None
    if isinstance(raw, (list, tuple)) and len(raw) == 3 and all(
            isinstance(v, (int, float)) and 0 <= v <= 255 for v in raw):
        return (int(raw[0]), int(raw[1]), int(raw[2]))
    return DEFAULT_COLORS[order % len(DEFAULT_COLORS)]


def preview(body: Any, model_getter: Callable[[], Any] | None = None) -> RouteResult:
    """``POST /vanish/preview``: SAM 2 masks of one frame from the editor's prompts, as an overlay.

    ``model_getter`` defaults to ``sam2_loader.last_loaded_model`` (the loader's cached model).
    """
    from .ops import sam2_loader, sam2_session  # deferred: sam2 is only needed for previews

    try:
        if not isinstance(body, Mapping):
            raise RouteError(400, "the request must be a JSON object.", "update the editor (reload the page).")
        model = (model_getter or sam2_loader.last_loaded_model)()
        if model is None:
            raise RouteError(409, *NO_MODEL)
        index = _int_param(body, "index", -1, 0, MAX_INDEX)
        image = _frame_for_preview(body.get("frame"))
        h, w = image.shape[:2]
        parts = frame_prompts(body.get("prompts"), index, w, h)
        if not parts:
            raise RouteError(400, f"there are no prompts on frame {index}.", "click on the object first.")
        try:
            masks = sam2_session.preview_single_frame(model, image, parts)  # [N_obj, H, W] bool
        except TimeoutError as exc:
            raise RouteError(503, "SAM 2 is busy with a run.", "try the preview again when it ends.") from exc
        except sam2_session.TooManyObjects as exc:
            raise RouteError(400, f"{exc}.", f"preview at most {sam2_session.MAX_OBJECTS} objects at once.") from exc
    except RouteError as exc:
        return _error_result(exc)
    colors = [_colour_for(body.get("colors"), obj_id, i) for i, obj_id in enumerate(parts)]
    areas = {str(obj_id): int(m.sum()) for obj_id, m in zip(parts, masks)}
    return RouteResult(200, _png(overlay_rgba(masks, colors)), "image/png",
                       {"X-Vanish-Mask-Areas": json.dumps(areas), "Cache-Control": "no-store"})


def parse_body(text: str) -> Any:
    """The JSON body of a POST, or a 400 :class:`RouteError` (also for absurd nesting, which
    would otherwise end in a RecursionError and a plain-text 500)."""
    try:
        return load_json(text, "the request body ", "update the editor (reload the page).")
    except PromptError as exc:
        raise RouteError(400, exc.problem.replace("is not valid JSON", "is not JSON"), exc.fix) from None


# --------------------------------------------------------------------------- server wiring
def _respond(result: RouteResult):
    web = _comfy.web_responses()  # aiohttp's web module, as ComfyUI's server exposes it
    if isinstance(result.body, dict):
        return web.json_response(result.body, status=result.status, headers=result.headers)
    return web.Response(body=result.body, status=result.status, content_type=result.content_type,
                        headers=result.headers)


def _guarded(func: Callable[..., RouteResult], *args: Any) -> RouteResult:
    try:
        return func(*args)
    except Exception as exc:  # never a bare traceback for the editor: log it, answer 500
        logger.exception("Vanish route %s failed", func.__name__)
        return RouteResult(500, {"error": f"the server failed: {type(exc).__name__}: {exc}",
                                 "fix": "see the ComfyUI console for details."})


def register() -> None:
    """Add the pack's routes to ComfyUI's PromptServer (no-op when there is none)."""
    routes = _comfy.prompt_server_routes()
    if routes is None:
        return

    def query_route(func: Callable[[Mapping[str, Any]], RouteResult]):
        async def handler(request):
            params = dict(request.rel_url.query)
            return _respond(await asyncio.to_thread(_guarded, func, params))
        return handler

    async def preview_handler(request):
        try:
            body = parse_body(await request.text())
        except RouteError as exc:
            return _respond(_error_result(exc))
        except UnicodeDecodeError:
            return _respond(RouteResult(400, {"error": "the request body is not JSON (not UTF-8 text)."}))
        return _respond(await asyncio.to_thread(_guarded, preview, body))

    routes.get(f"{PREFIX}/video_info")(query_route(video_info))
    routes.get(f"{PREFIX}/frame")(query_route(frame_png))
    routes.get(f"{PREFIX}/run_frames")(query_route(run_frames))
    routes.get(f"{PREFIX}/run_frame")(query_route(run_frame))
    routes.post(f"{PREFIX}/preview")(preview_handler)
    logger.debug("Vanish editor routes registered under %s/", PREFIX)
