"""Write the shipped example graphs in ``workflows/`` (UI format, as ComfyUI saves them).

Run ``.venv/bin/python tests/make_workflows.py`` after changing a node's inputs (``--check`` only
compares, ``--help`` lists the options); the workflow
tests (``tests/test_workflows.py``) lint the files and execute them on real clips, so a stale
file fails CI rather than silently shifting widget values in users' graphs.

Each graph is described by name: node ``(key, type, widget values by name)`` and links
``(source key, output name, target key, input name)``. Widgets not named keep their defaults.
Positions, sizes and the opening view come from the links (``tests/workflow_layout.py``): list
a graph's nodes in the order they should stack within a column.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

import conftest  # noqa: E402,F401  (registers the pack as `vanish`)
from vanish import NODE_CLASS_MAPPINGS  # noqa: E402
from vanish.nodes.inpainting import NO_FILE  # noqa: E402
from workflow_layout import GAP, node_size, note_size, place, rect, view  # noqa: E402
from workflow_tools import link_inputs, widget_specs  # noqa: E402

WORKFLOWS = Path(__file__).parents[1] / "workflows"

SAM2_MODEL = {
    "name": "sam2.1_hiera_small.pt",
    "url": "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_small.pt",
    "directory": "sam2",
}
PROPAINTER_MODELS = [
    {"name": name, "url": f"https://github.com/sczhou/ProPainter/releases/download/v0.1.0/{name}",
     "directory": "propainter"}
    for name in ("raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth")
]
# The tennis player, clicked once on frame 0 (tennis clip from ../shared/clips, 432x240).
TENNIS_PROMPT = {"version": 1, "image_size": [432, 240], "objects": [
    {"id": 1, "name": "player", "frames": {"0": {"positive": [[238, 141]], "negative": []}}}]}


def _default_values(cls, values: dict) -> list:
    out = []
    for spec in widget_specs(cls):
        if spec.kind == "UPLOAD":
            out.append("image")  # what the frontend stores for its upload button
        elif spec.kind == "CONTROL":
            out.append("fixed")
        elif spec.name in values:
            out.append(values[spec.name])
        elif "default" in spec.options:
            out.append(spec.options["default"])
        elif spec.kind == "COMBO" and spec.choices:
            out.append(spec.choices[0])
        else:
            raise KeyError(f"{cls.__name__}: no value for widget '{spec.name}'")
    unknown = set(values) - {s.name for s in widget_specs(cls)}
    if unknown:
        raise KeyError(f"{cls.__name__}: unknown widgets {sorted(unknown)}")
    return out


def build(nodes: list[tuple], links: list[tuple], *, models: list[dict], note: str) -> dict:
    """A UI-format workflow dict from a compact description."""
    ids = {key: i + 1 for i, (key, *_rest) in enumerate(nodes)}
    keys = [key for key, *_rest in nodes]
    sizes = {key: node_size(NODE_CLASS_MAPPINGS[ntype]) for key, ntype, _values in nodes}
    positions = place(keys, sizes, links)
    graph_nodes, graph_links = [], []
    for order, (key, ntype, values) in enumerate(nodes):
        cls = NODE_CLASS_MAPPINGS[ntype]
        inputs = [{"name": name, "type": typ, "link": None} for name, typ in link_inputs(cls).items()]
        outputs = [{"name": name, "type": typ, "links": [], "slot_index": slot}
                   for slot, (typ, name) in enumerate(zip(cls.RETURN_TYPES, cls.RETURN_NAMES))]
        node = {"id": ids[key], "type": ntype, "pos": positions[key], "size": list(sizes[key]), "flags": {},
                "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": ntype, "cnr_id": "vanish"},
                "widgets_values": _default_values(cls, values)}
        if ntype == "VanishSAM2ModelLoader":
            node["properties"]["models"] = [SAM2_MODEL]
        if ntype == "VanishProPainterModelLoader" and values.get("backend", "propainter") == "propainter":
            node["properties"]["models"] = PROPAINTER_MODELS
        graph_nodes.append(node)
    by_id = {n["id"]: n for n in graph_nodes}
    for link_id, (src, out_name, dst, in_name) in enumerate(links, start=1):
        src_node, dst_node = by_id[ids[src]], by_id[ids[dst]]
        out_slot = next(o for o in src_node["outputs"] if o["name"] == out_name)
        in_index = next(i for i, s in enumerate(dst_node["inputs"]) if s["name"] == in_name)
        dst_node["inputs"][in_index]["link"] = link_id
        out_slot["links"].append(link_id)
        graph_links.append([link_id, src_node["id"], out_slot["slot_index"], dst_node["id"], in_index,
                            out_slot["type"]])
    note_w, note_h = note_size(note)
    note_node = {"id": len(graph_nodes) + 1, "type": "Note", "pos": [0, -(note_h + GAP)],
                 "size": [note_w, note_h], "flags": {}, "order": len(graph_nodes), "mode": 0,
                 "inputs": [], "outputs": [], "properties": {}, "widgets_values": [note]}
    every = graph_nodes + [note_node]
    return {"last_node_id": note_node["id"], "last_link_id": len(graph_links),
            "nodes": every, "links": graph_links, "groups": [], "config": {},
            "extra": {"ds": view([rect(n) for n in every])}, "version": 0.4, "models": models}


def _sam2_front() -> tuple[list[tuple], list[tuple]]:
    """Load Video Frames -> SAM 2 Model Loader + SAM 2 Video Prompt -> SAM 2 Propagate."""
    nodes = [
        ("load", "VanishLoadVideoFrames", {"video": "tennis.mp4"}),
        ("sam", "VanishSAM2ModelLoader", {"checkpoint": SAM2_MODEL["name"]}),
        ("prompt", "VanishSAM2VideoPrompt", {"prompts": json.dumps(TENNIS_PROMPT)}),
        ("track", "VanishSAM2Propagate", {}),
    ]
    links = [
        ("load", "frames", "prompt", "frames"), ("load", "frames", "track", "frames"),
        ("sam", "model", "track", "model"), ("prompt", "prompts", "track", "prompts"),
    ]
    return nodes, links



# The links every removal graph shares, from the dilated mask on: inpaint (frames, hard mask,
# model) -> composite into the original (soft mask, crop) -> warp-error metric -> save with audio.
_REMOVAL_LINKS = [
    ("load", "frames", "inpaint", "images"), ("dilate", "hard_mask", "inpaint", "mask"),
    ("pp", "model", "inpaint", "model"),
    ("load", "frames", "comp", "original"), ("inpaint", "filled", "comp", "fill"),
    ("dilate", "soft_mask", "comp", "mask"), ("inpaint", "crop", "comp", "crop"),
    ("comp", "frames", "metric", "frames"), ("dilate", "hard_mask", "metric", "mask"),
    ("comp", "frames", "save", "images"), ("load", "audio", "save", "audio"),
    ("load", "video_info", "save", "video_info"),
]

def remove_object() -> dict:
    nodes, links = _sam2_front()
    nodes += [
        ("effects", "VanishEffectsMask", {"enabled": True}),
        ("dilate", "VanishMaskDilateBlur", {"grow": 8, "feather": 2.0, "temporal_sigma": 1.0}),
        ("pp", "VanishProPainterModelLoader", {}),
        ("inpaint", "VanishProPainterInpaint", {"crop": "auto"}),
        ("comp", "VanishCompositeFrames", {}),
        ("metric", "VanishWarpErrorMetric", {}),
        ("save", "VanishSaveVideo", {"filename_prefix": "vanish/removed"}),
    ]
    links += [("track", "mask", "effects", "mask"), ("load", "frames", "effects", "frames"),
              ("effects", "mask", "dilate", "mask"), *_REMOVAL_LINKS]
    return build(nodes, links, models=[SAM2_MODEL, *PROPAINTER_MODELS], note=(
        "Remove an object: pick your clip in Load Video Frames, click the object in SAM 2 Video "
        "Prompt (left click = keep, shift/right click = exclude), queue. SAM 2 tracks it through "
        "the clip, ProPainter fills it, Composite Frames pastes the fill into the untouched "
        "original. Effects Mask adds the object's shadow to the mask (set 'enabled' off to remove "
        "the object alone). Models: models/sam2 and models/propainter (the frontend offers the "
        "downloads)."))


def _region_graph(backend: str, note: str) -> dict:
    loader_values = {"backend": backend}
    if backend == NO_FILE:  # no file names at all: nothing for the frontend to report missing
        loader_values.update(raft=NO_FILE, flow_completion=NO_FILE, generator=NO_FILE)
    nodes = [
        ("load", "VanishLoadVideoFrames", {"video": "running_car.mp4", "mask_path": "mask_logo.png",
                                           "mask_threshold": 0.5}),
        ("dilate", "VanishMaskDilateBlur", {"grow": 6, "feather": 2.0}),
        ("pp", "VanishProPainterModelLoader", loader_values),
        ("inpaint", "VanishProPainterInpaint", {"crop": "auto"}),
        ("comp", "VanishCompositeFrames", {}),
        ("metric", "VanishWarpErrorMetric", {}),
        ("save", "VanishSaveVideo", {"filename_prefix": "vanish/region_removed"}),
    ]
    links = [("load", "mask", "dilate", "mask"), *_REMOVAL_LINKS]
    models = PROPAINTER_MODELS if backend == "propainter" else []
    return build(nodes, links, models=models, note=note)


def remove_region() -> dict:
    return _region_graph("propainter", (
        "Remove a fixed region (watermark, logo): Load Video Frames reads the clip and a static "
        "mask image (mask_path, white = remove; any size, resized to the video). No SAM 2. "
        "ProPainter weights go in models/propainter."))


def remove_region_no_weights() -> dict:
    return _region_graph(NO_FILE, (
        "Remove a region with no model weights at all: the flow_fill backend (OpenCV DIS flow, "
        "smooth flow completion, pixels carried along the flow from other frames, a spatial fill "
        "carried along the flow where nothing was ever visible). Runs on any CPU."))


def transparent_subject() -> dict:
    nodes, links = _sam2_front()
    nodes += [
        ("refine", "VanishMaskDilateBlur", {"grow": 1, "feather": 1.0, "temporal_sigma": 1.0}),
        ("save", "VanishSaveVideo", {"filename_prefix": "vanish/subject_alpha", "format": "vp9-webm"}),
    ]
    links += [
        ("track", "mask", "refine", "mask"), ("load", "frames", "refine", "guide"),
        ("load", "frames", "save", "images"), ("refine", "soft_mask", "save", "mask"),
        ("load", "audio", "save", "audio"), ("load", "video_info", "save", "video_info"),
    ]
    return build(nodes, links, models=[SAM2_MODEL], note=(
        "Transparent background: the clicked subject over nothing. SAM 2 tracks it, Mask Dilate & "
        "Blur feathers the edge (guided by the frames for hair), Save Video writes the mask as "
        "alpha (vp9-webm; prores4444-mov or png-sequence also keep alpha)."))


def replace_background() -> dict:
    nodes, links = _sam2_front()
    nodes += [
        ("bg", "VanishLoadVideoFrames", {"video": "running_car.mp4", "custom_width": 432,
                                         "custom_height": 240}),
        ("refine", "VanishMaskDilateBlur", {"feather": 1.0, "temporal_sigma": 1.0, "invert": True,
                                            "grow": 0}),
        ("comp", "VanishCompositeFrames", {}),
        ("save", "VanishSaveVideo", {"filename_prefix": "vanish/new_background"}),
    ]
    links += [
        ("track", "mask", "refine", "mask"), ("load", "frames", "refine", "guide"),
        ("load", "frames", "comp", "original"), ("bg", "frames", "comp", "fill"),
        ("refine", "soft_mask", "comp", "mask"),
        ("comp", "frames", "save", "images"), ("load", "audio", "save", "audio"),
        ("load", "video_info", "save", "video_info"),
    ]
    return build(nodes, links, models=[SAM2_MODEL], note=(
        "Replace the background: the clicked subject stays, everything else comes from a second "
        "clip (or one image, reused for every frame). The subject mask is inverted so Composite "
        "Frames replaces the background; it is resized to the subject clip."))


def remove_object_with_shadow() -> dict:
    """Issue 12's demo: a synthetic car and its shadow (examples/vanish_shadow_demo*.mp4)."""
    nodes = [
        ("load", "VanishLoadVideoFrames", {"video": "vanish_shadow_demo.mp4",
                                           "mask_path": "vanish_shadow_demo_mask.mp4",
                                           "mask_threshold": 0.5}),
        ("effects", "VanishEffectsMask", {"effects": "shadow"}),
        ("dilate", "VanishMaskDilateBlur", {"grow": 3, "feather": 1.5}),
        ("pp", "VanishProPainterModelLoader", {"backend": NO_FILE, "raft": NO_FILE,
                                                "flow_completion": NO_FILE, "generator": NO_FILE}),
        ("inpaint", "VanishProPainterInpaint", {"crop": "auto"}),
        ("comp", "VanishCompositeFrames", {}),
        ("metric", "VanishWarpErrorMetric", {}),
        ("save", "VanishSaveVideo", {"filename_prefix": "vanish/removed_with_shadow"}),
    ]
    links = [("load", "mask", "effects", "mask"), ("load", "frames", "effects", "frames"),
             ("effects", "mask", "dilate", "mask"), *_REMOVAL_LINKS]
    return build(nodes, links, models=[], note=(
        "Remove an object together with its shadow, no model weights: copy vanish_shadow_demo.mp4 "
        "and vanish_shadow_demo_mask.mp4 from the pack's examples/ folder into ComfyUI/input, "
        "queue. Effects Mask finds the shadow the car casts (its preview shows the car's outline "
        "in red, the shadow in cyan) and grows the mask by it; flow_fill removes both. Set "
        "'enabled' off to see the shadow left behind. With your own clip, get the object mask "
        "from SAM 2 Propagate instead of mask_path."))


def remove_object_streaming() -> dict:
    nodes = [
        ("sam", "VanishSAM2ModelLoader", {"checkpoint": SAM2_MODEL["name"]}),
        ("prompt", "VanishSAM2VideoPrompt", {"prompts": json.dumps(TENNIS_PROMPT)}),
        ("pp", "VanishProPainterModelLoader", {}),
        ("stream", "VanishRemoveObjectStreaming", {"video": "tennis.mp4",
                                                   "filename_prefix": "vanish/removed_streaming"}),
    ]
    links = [("sam", "model", "stream", "sam2_model"), ("prompt", "prompts", "stream", "prompts"),
             ("pp", "model", "stream", "inpaint_model")]
    return build(nodes, links, models=[SAM2_MODEL, *PROPAINTER_MODELS], note=(
        "Remove an object from a long clip: the same job as 'Vanish - Remove an object' in one node that "
        "streams the file (memory does not grow with the clip). Pick the clip (or connect core's Load "
        "Video to core_video), click the object in SAM 2 Video Prompt, queue. The result goes to "
        "the output folder with the clip's sound."))


GRAPHS = {
    "remove_object": remove_object,
    "remove_region": remove_region,
    "remove_region_no_weights": remove_region_no_weights,
    "transparent_subject": transparent_subject,
    "replace_background": replace_background,
    "remove_object_with_shadow": remove_object_with_shadow,
    "remove_object_streaming": remove_object_streaming,
}
# The file names, which ComfyUI's template browser shows as the titles of a custom node's templates
# (it reads no other title); each has its thumbnail <title>.jpg beside it (tests/make_thumbnails.py).
TITLES = {
    "remove_object": "Vanish - Remove an object",
    "remove_region": "Vanish - Remove a fixed region",
    "remove_region_no_weights": "Vanish - Remove with no weights",
    "transparent_subject": "Vanish - Transparent background",
    "replace_background": "Vanish - Replace the background",
    "remove_object_with_shadow": "Vanish - Remove an object and its shadow",
    "remove_object_streaming": "Vanish - Remove a long clip",
}


def workflow_path(key: str) -> Path:
    """The shipped file of graph ``key``."""
    return WORKFLOWS / f"{TITLES[key]}.json"


def render(make) -> str:
    """The file text of one graph, exactly as written."""
    return json.dumps(make(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the files that differ from what this script makes")
    args = parser.parse_args(argv)
    stale = []
    for name, make in GRAPHS.items():
        path = workflow_path(name)
        text = render(make)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        WORKFLOWS.mkdir(exist_ok=True)
        path.write_text(text)
        print("wrote", path)
    for path in stale:
        print(f"stale: {path} (run tests/make_workflows.py to rewrite it)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
