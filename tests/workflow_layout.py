"""Where the shipped workflows put their nodes, and the view they open with (generic rules).

The frontend draws a node at ``pos`` with its title bar *above* it and makes it at least as large
as its content (``size = max(saved size, node.computeSize())`` on load), so a saved size smaller
than the content grows over its neighbours. The rules here:

* :func:`node_size` -- a size no smaller than what the frontend computes for the node's slots and
  widgets (LiteGraph's slot and widget heights), plus room the frontend adds at run time (the
  video preview under an upload widget, the prompt editor's canvas);
* :func:`place` -- columns from the links (a node sits one column right of its furthest input; a
  node without inputs sits just left of its first consumer), nodes stacked in each column in the
  order given, a gap between everything, the Note above the first column;
* :func:`view` -- ``extra.ds`` (offset, scale) that shows the whole graph, title bars included,
  clear of the sidebar and the tab bar in a :data:`VIEWPORT` window, at a zoom where the frontend
  still draws widgets.

``tests/make_workflows.py`` uses them for every graph; ``tests/test_workflow_frontend.py`` checks
the result (no overlaps at the saved sizes, everything inside the view).
"""
from __future__ import annotations

import re
from pathlib import Path

from workflow_tools import link_inputs, widget_specs

# LiteGraph (ComfyUI frontend, litegraph LiteGraphGlobal): NODE_TITLE_HEIGHT, NODE_SLOT_HEIGHT,
# NODE_WIDGET_HEIGHT (+4 px between widgets).
TITLE_H = 30
SLOT_H = 20
WIDGET_H = 24
MULTILINE_H = 100  # a multiline STRING widget (textarea) at its usual least height
PREVIEW_H = 300  # the clip preview the frontend shows under a video_upload widget
PAD_H = 24
NODE_W = 320
GAP = 16  # between nodes, and between columns
# The window the view is made for, and the frontend's chrome inside it: the sidebar (icons, left)
# and the workflow tabs plus the floating Run bar (top); the margin keeps title bars off their
# edges. Measured in ComfyUI 0.33.0 with frontend 1.49.6 in a 1920x950 page
# (tests/web/genuine_comfyui.mjs): sidebar 59 px, tab bar 38 px, Run bar down to 82 px.
VIEWPORT = (1920, 950)
SIDEBAR_W = 60
TOPBAR_H = 84
MARGIN = 24
MIN_SCALE = 0.6  # below this zoom the frontend draws nodes without their widgets (low quality)

_EDITOR_JS = Path(__file__).resolve().parents[1] / "web" / "js" / "vanish_prompt_editor.js"


def editor_node_size() -> tuple[int, int]:
    """The prompt editor's size for a new node (DEFAULT_NODE_SIZE in the editor's JS)."""
    found = re.search(r"DEFAULT_NODE_SIZE = \[(\d+), (\d+)\]", _EDITOR_JS.read_text())
    return int(found.group(1)), int(found.group(2))


def node_size(cls) -> tuple[int, int]:
    """At least the frontend's computed size of a ``cls`` node, with its run-time additions."""
    specs = widget_specs(cls)
    height = max(len(link_inputs(cls)), len(cls.RETURN_TYPES), 1) * SLOT_H + PAD_H
    for spec in specs:
        multiline = spec.kind == "STRING" and spec.options.get("multiline")
        height += MULTILINE_H if multiline else WIDGET_H
        if spec.kind == "UPLOAD" and spec.name.startswith("video"):
            height += PREVIEW_H
    width = NODE_W
    if getattr(cls, "__name__", "") == "VanishSAM2VideoPrompt":
        width, least = editor_node_size()
        height = max(height, least)
    return width, height


def note_size(text: str, width: int = 560) -> tuple[int, int]:
    """A Note large enough for ``text`` (about 7 px a character, 18 px a line)."""
    per_line = max((width - 20) // 7, 20)
    lines = sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))
    return width, max(120, lines * 18 + 40)


def columns(keys: list[str], links: list[tuple]) -> dict[str, int]:
    """Column of each node: right of its inputs; a node without inputs left of its first consumer."""
    sources = {k: [s for s, _o, d, _i in links if d == k] for k in keys}
    col: dict[str, int] = {}

    def depth(key: str, seen: tuple = ()) -> int:
        if key not in col:
            if key in seen:
                raise ValueError(f"the graph has a cycle through {key!r}")
            col[key] = max((depth(s, seen + (key,)) + 1 for s in sources[key]), default=0)
        return col[key]

    for key in keys:
        depth(key)
    for key in keys:
        consumers = [col[d] for s, _o, d, _i in links if s == key]
        if not sources[key] and consumers:
            col[key] = max(min(consumers) - 1, 0)
    return col


def place(keys: list[str], sizes: dict[str, tuple[int, int]], links: list[tuple]) -> dict[str, list[int]]:
    """Positions (top-left of the body, below the title bar) for every node, columns left to right."""
    col = columns(keys, links)
    widths = {c: max(sizes[k][0] for k in keys if col[k] == c) for c in set(col.values())}
    x_of, x = {}, 0
    for c in sorted(widths):
        x_of[c] = x
        x += widths[c] + GAP
    pos, y_of = {}, {}
    for key in keys:  # stacked in the order given
        y = y_of.get(col[key], 0)
        pos[key] = [x_of[col[key]], y + TITLE_H]
        y_of[col[key]] = y + TITLE_H + sizes[key][1] + GAP
    return pos


def rect(node: dict) -> tuple[float, float, float, float]:
    """A node's rectangle on the canvas, title bar included: (left, top, right, bottom)."""
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - TITLE_H, x + w, y + h


def view(rects: list[tuple[float, float, float, float]]) -> dict:
    """``extra.ds`` showing every rectangle inside :data:`VIEWPORT`, clear of the frontend's chrome.

    The frontend maps a canvas point to the screen as ``(point + offset) * scale``.
    """
    left, top = min(r[0] for r in rects), min(r[1] for r in rects)
    right, bottom = max(r[2] for r in rects), max(r[3] for r in rects)
    room_w = VIEWPORT[0] - SIDEBAR_W - 2 * MARGIN
    room_h = VIEWPORT[1] - TOPBAR_H - 2 * MARGIN
    scale = min(1.0, room_w / (right - left), room_h / (bottom - top))
    scale = int(scale * 100) / 100  # two decimals, rounded down so it still fits
    if scale < MIN_SCALE:
        raise ValueError(f"the graph ({right - left:.0f}x{bottom - top:.0f}) needs zoom {scale} to fit "
                         f"{VIEWPORT}; below {MIN_SCALE} the frontend hides widgets: make it more compact")
    offset = [round((SIDEBAR_W + MARGIN) / scale - left, 1), round((TOPBAR_H + MARGIN) / scale - top, 1)]
    return {"scale": scale, "offset": offset}
