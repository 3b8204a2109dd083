"""SAM 2 prompts: the data model behind the ``SAM 2 Video Prompt`` node and its canvas editor.

The node stores its prompts as one JSON value in a multiline widget, so a saved workflow carries
them. The shape (``version`` 1) is::

    {"version": 1,
     "image_size": [W, H],          # optional: the frame size the coordinates refer to
     "frame_count": T,              # optional: checked against the frames when present
     "objects": [
       {"id": 1, "name": "rider",   # name optional; ids unique, integers >= 0
        "frames": {"0":  {"positive": [[x, y], ...],
                          "negative": [[x, y], ...],
                          "boxes":    [[x0, y0, x1, y1], ...]},
                   "37": {"positive": [[x, y]]}}}
     ]}

* Coordinates are pixels of the original frame (floats, origin top-left, x right, y down). When
  ``image_size`` is given and the frames have another size, coordinates are scaled to the frames.
* Frame keys are 0-based indices into the frames given to ``SAM 2 Propagate``.
* Every object needs at least one positive point or box on some frame; a frame may hold only
  negative points (a correction click). Empty lists may be left out.

Also accepted, so existing graphs connect: the point strings of the KJNodes Points Editor and of
ComfyUI's SAM 3 nodes, ``[{"x": 120, "y": 80}, ...]`` (see :func:`parse_xy_points`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

PROMPT_FORMAT_VERSION = 1

Point = tuple[float, float]
Box = tuple[float, float, float, float]


class PromptError(ValueError):
    """A problem with the prompts, with the fix the user should make."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\nFix: {fix}")


@dataclass
class FramePrompts:
    """The clicks and boxes for one object on one frame (original-frame pixels)."""

    positive: list[Point] = field(default_factory=list)
    negative: list[Point] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.positive or self.negative or self.boxes)

    def has_positive(self) -> bool:
        return bool(self.positive or self.boxes)

    def scaled(self, sx: float, sy: float) -> FramePrompts:
        return FramePrompts(
            positive=[(x * sx, y * sy) for x, y in self.positive],
            negative=[(x * sx, y * sy) for x, y in self.negative],
            boxes=[(a * sx, b * sy, c * sx, d * sy) for a, b, c, d in self.boxes])

    def to_dict(self) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {}
        for key in ("positive", "negative", "boxes"):
            values = getattr(self, key)
            if values:
                out[key] = [list(v) for v in values]
        return out


@dataclass
class ObjectPrompts:
    """One tracked object: its id, optional name and prompts per frame index."""

    id: int
    frames: dict[int, FramePrompts] = field(default_factory=dict)
    name: str | None = None

    def first_frame(self) -> int:
        return min(self.frames)


@dataclass
class PromptSet:
    """All objects' prompts; parse with :meth:`from_json`, write with :meth:`to_json`."""

    objects: list[ObjectPrompts] = field(default_factory=list)
    image_size: tuple[int, int] | None = None  # (W, H)
    frame_count: int | None = None
    version: int = PROMPT_FORMAT_VERSION

    # ------------------------------------------------------------------ serialisation
    @classmethod
    def from_json(cls, value: str | dict) -> PromptSet:
        """Parse the widget value (a JSON string or an already-decoded dict).

        Raises:
            PromptError: malformed JSON, wrong types, duplicate ids, empty objects.
        """
        if isinstance(value, str):
            if not value.strip():
                raise PromptError("is empty.", "click on the object in the editor, or paste a "
                                  'prompt such as {"version": 1, "objects": [{"id": 1, "frames": '
                                  '{"0": {"positive": [[100, 200]]}}}]}.')
            value = load_json(value, "", "fix the JSON text, or clear it and click the objects "
                              "again in the editor.")
        if not isinstance(value, dict):
            raise PromptError(f"must be a JSON object, got {type(value).__name__}.",
                              'write {"version": 1, "objects": [...]} (see the node description).')
        version = value.get("version", PROMPT_FORMAT_VERSION)
        if version != PROMPT_FORMAT_VERSION:
            raise PromptError(f"has version {version!r}; this Vanish reads version "
                              f"{PROMPT_FORMAT_VERSION}.", "update Vanish, or re-create the prompts.")
        objects = value.get("objects")
        if not isinstance(objects, list):
            raise PromptError("has no 'objects' list.",
                              'add "objects": [{"id": 1, "frames": {"0": {"positive": [[x, y]]}}}].')
        parsed = [_parse_object(obj, i) for i, obj in enumerate(objects)]
        _check_unique_ids(parsed)
        return cls(objects=parsed, image_size=_parse_image_size(value.get("image_size")),
                   frame_count=_parse_frame_count(value.get("frame_count")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        if self.image_size is not None:
            out["image_size"] = list(self.image_size)
        if self.frame_count is not None:
            out["frame_count"] = self.frame_count
        out["objects"] = []
        for obj in self.objects:
            entry: dict[str, Any] = {"id": obj.id}
            if obj.name:
                entry["name"] = obj.name
            entry["frames"] = {str(t): obj.frames[t].to_dict() for t in sorted(obj.frames)}
            out["objects"].append(entry)
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    # ------------------------------------------------------------------ checks
    def validate(self, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
                 ) -> None:
        """Check the prompts against the frames they will be used with.

        Args:
            frame_count: number of frames T (None: only ``frame_count`` in the JSON is used).
            frame_size: ``(W, H)`` of the frames; coordinates are checked in ``image_size``
                when that is given, else in this size.
        Raises:
            PromptError: no objects, an object without a positive prompt, frame index out of
                range, point outside the frame, box without area, frame count mismatch.
        """
        if not self.objects:
            raise PromptError("has no objects.", "click at least one positive point on the "
                              "object to remove (or draw a box around it).")
        if frame_count is not None and self.frame_count is not None and self.frame_count != frame_count:
            raise PromptError(f"were made for {self.frame_count} frames but the clip has "
                              f"{frame_count}.", "re-open the editor on these frames, or load the "
                              "clip with the same frame selection (skip/cap/every-nth) as before.")
        count = frame_count if frame_count is not None else self.frame_count
        size = self.image_size if self.image_size is not None else frame_size
        for obj in self.objects:
            if not any(fp.has_positive() for fp in obj.frames.values()):
                raise PromptError(f"object {obj.id} has no positive point or box.",
                                  f"add a positive click or a box on object {obj.id}, or delete it.")
            for t, fp in obj.frames.items():
                if count is not None and not 0 <= t < count:
                    raise PromptError(f"object {obj.id} has prompts on frame {t}, but the frames "
                                      f"are numbered 0 to {count - 1}.",
                                      "move the prompt to a frame that exists, or delete it.")
                if size is not None:
                    _check_inside(obj.id, t, fp, size)

    def scaled_to(self, width: int, height: int) -> PromptSet:
        """Prompts in pixels of a ``width`` x ``height`` frame (scaled from ``image_size``)."""
        if self.image_size is None or tuple(self.image_size) == (width, height):
            return self
        sx, sy = width / self.image_size[0], height / self.image_size[1]
        objects = [ObjectPrompts(o.id, {t: fp.scaled(sx, sy) for t, fp in o.frames.items()}, o.name)
                   for o in self.objects]
        return PromptSet(objects, (width, height), self.frame_count, self.version)

    def prompted_frames(self) -> list[int]:
        return sorted({t for obj in self.objects for t in obj.frames})


# ---------------------------------------------------------------------- parsing helpers
MAX_JSON_DEPTH = 64
"""Deepest nesting of brackets the prompt JSON may have (a valid prompt nests 6 deep)."""


def json_depth(text: str) -> int:
    """How deep ``[`` / ``{`` nest in ``text``, brackets inside strings not counted (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def load_json(text: str, what: str, fix: str) -> Any:
    """``json.loads`` that answers malformed or absurdly nested text with a :class:`PromptError`.

    Python's decoder recurses once per bracket, so 100,000 ``[`` would end in a bare
    RecursionError; the depth is counted first, without recursion.
    """
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise PromptError(f"{what}nests brackets {depth} deep; prompts nest at most "
                          f"{MAX_JSON_DEPTH} deep.", fix)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptError(f"{what}is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                          f"{exc.colno}).", fix) from exc
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise PromptError(f"{what}nests brackets too deep.", fix) from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):  # JSON true/false are not coordinates (float(True) would be 1.0)
        raise PromptError(f"{what} has {str(value).lower()}, which is not a number.",
                          "write coordinates as numbers, e.g. [120.5, 80].")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise PromptError(f"{what} has {value!r}, which is not a number.",
                              "write coordinates as numbers, e.g. [120.5, 80].") from None
    if not math.isfinite(value):
        raise PromptError(f"{what} has {value!r}.", "write finite pixel coordinates.")
    return float(value)


def _parse_point(raw: Any, what: str) -> Point:
    if isinstance(raw, dict) and "x" in raw and "y" in raw:
        return (_number(raw["x"], what), _number(raw["y"], what))
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return (_number(raw[0], what), _number(raw[1], what))
    raise PromptError(f"{what} has {raw!r}; a point is [x, y].", "write each point as [x, y].")


def _parse_box(raw: Any, what: str) -> Box:
    if isinstance(raw, (list, tuple)) and len(raw) == 4:
        x0, y0, x1, y1 = (_number(v, what) for v in raw)
        return (x0, y0, x1, y1)
    raise PromptError(f"{what} has {raw!r}; a box is [x0, y0, x1, y1].",
                      "write each box as [left, top, right, bottom] in pixels.")


def _parse_frame(raw: Any, where: str) -> FramePrompts:
    if not isinstance(raw, dict):
        raise PromptError(f"{where} must be an object with 'positive', 'negative' and 'boxes'.",
                          'write e.g. {"positive": [[x, y]]}.')
    unknown = set(raw) - {"positive", "negative", "boxes"}
    if unknown:
        raise PromptError(f"{where} has unknown keys {sorted(unknown)}.",
                          "use only 'positive', 'negative' and 'boxes'.")
    lists = {}
    for key in ("positive", "negative", "boxes"):
        values = raw.get(key, [])
        if not isinstance(values, list):
            raise PromptError(f"{where} '{key}' must be a list.", f'write "{key}": [...].')
        lists[key] = values
    fp = FramePrompts(
        positive=[_parse_point(p, f"{where} 'positive'") for p in lists["positive"]],
        negative=[_parse_point(p, f"{where} 'negative'") for p in lists["negative"]],
        boxes=[_parse_box(b, f"{where} 'boxes'") for b in lists["boxes"]])
    if fp.is_empty():
        raise PromptError(f"{where} has no points or boxes.", "add a click there or remove the frame.")
    return fp


def _parse_object(raw: Any, index: int) -> ObjectPrompts:
    if not isinstance(raw, dict):
        raise PromptError(f"objects[{index}] must be a JSON object.",
                          'write {"id": 1, "frames": {...}}.')
    obj_id = raw.get("id", index + 1)
    if isinstance(obj_id, bool) or not isinstance(obj_id, int) or obj_id < 0:
        raise PromptError(f"objects[{index}] has id {obj_id!r}; ids are whole numbers >= 0.",
                          "give each object its own number, e.g. 1, 2, 3.")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise PromptError(f"object {obj_id} has a name that is not text.", "write the name in quotes.")
    frames_raw = raw.get("frames")
    if not isinstance(frames_raw, dict) or not frames_raw:
        raise PromptError(f"object {obj_id} has no prompts ('frames' is missing or empty).",
                          f"click on object {obj_id} on at least one frame, or delete it.")
    frames: dict[int, FramePrompts] = {}
    for key, value in frames_raw.items():
        try:
            t = int(key)
        except (TypeError, ValueError):
            raise PromptError(f"object {obj_id} has frame key {key!r}, which is not a frame number.",
                              'use 0-based frame numbers as keys, e.g. "0", "37".') from None
        if t < 0:
            raise PromptError(f"object {obj_id} has a prompt on frame {t}.",
                              "frame numbers start at 0.")
        frames[t] = _parse_frame(value, f"object {obj_id} frame {t}")
    return ObjectPrompts(id=obj_id, frames=frames, name=name)


def _check_unique_ids(objects: list[ObjectPrompts]) -> None:
    seen: set[int] = set()
    for obj in objects:
        if obj.id in seen:
            raise PromptError(f"has two objects with id {obj.id}.",
                              "give every object its own id, or merge their prompts into one object.")
        seen.add(obj.id)


def _parse_image_size(raw: Any) -> tuple[int, int] | None:
    if raw is None:
        return None
    if (isinstance(raw, (list, tuple)) and len(raw) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1 for v in raw)):
        return (int(raw[0]), int(raw[1]))
    raise PromptError(f"has image_size {raw!r}; expected [width, height].",
                      "write the frame size the clicks were made on, or remove image_size.")


def _parse_frame_count(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    raise PromptError(f"has frame_count {raw!r}; expected a whole number >= 1.",
                      "write the number of frames, or remove frame_count.")


def _check_inside(obj_id: int, t: int, fp: FramePrompts, size: tuple[int, int]) -> None:
    w, h = size
    where = f"object {obj_id} frame {t}"
    for kind, points in (("positive", fp.positive), ("negative", fp.negative)):
        for x, y in points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise PromptError(f"{where} has a {kind} point at ({x:g}, {y:g}), outside the "
                                  f"{w}x{h} frame.", "move the point onto the frame (x from 0 to "
                                  f"{w}, y from 0 to {h}); check image_size matches the clip.")
    for x0, y0, x1, y1 in fp.boxes:
        if not (x1 > x0 and y1 > y0):
            raise PromptError(f"{where} has the box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] with no area.",
                              "write boxes as [left, top, right, bottom] with right > left and "
                              "bottom > top.")
        if not (0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h):
            raise PromptError(f"{where} has the box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] reaching "
                              f"outside the {w}x{h} frame.", "draw the box inside the frame.")


def parse_xy_points(text: str | list | None, what: str = "points") -> list[Point]:
    """Points from the KJNodes Points Editor / SAM 3 format ``[{"x": 1, "y": 2}, ...]``.

    Also accepts ``[[x, y], ...]`` and an empty string (no points).
    """
    if text is None:
        return []
    if isinstance(text, str):
        if not text.strip():
            return []
        text = load_json(text, f"{what} ", 'connect the Points Editor output, or write '
                         '[{"x": 100, "y": 200}].')
    if isinstance(text, dict):
        text = [text]
    if not isinstance(text, list):
        raise PromptError(f"{what} must be a list of points.", 'write [{"x": 100, "y": 200}].')
    return [_parse_point(p, what) for p in text]
