"""What ComfyUI's frontend makes of the shipped workflows: missing-model offers, layout, templates.

These mirror the frontend's own rules (read in Comfy-Org/ComfyUI_frontend; cited per test) on the
workflow JSON, so they run without a browser or a ComfyUI.
"""
from __future__ import annotations

import shutil

import pytest

from make_workflows import TITLES, workflow_path
from shared_paths import ROOT
from vanish import NODE_CLASS_MAPPINGS
from workflow_layout import MIN_SCALE, SIDEBAR_W, TOPBAR_H, VIEWPORT, editor_node_size, node_size, rect
from workflow_tools import NOTE_TYPES, load_workflow, widget_specs

WORKFLOW_FILES = sorted((ROOT / "workflows").glob("*.json"))
# platform/missingModel/missingModelScan.ts: MODEL_FILE_EXTENSIONS
MODEL_FILE_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".onnx", ".gguf")


def missing_models(workflow: dict) -> dict[str, dict]:
    """The frontend's missing-model report for ``workflow`` with the node definitions of now.

    missingModelScan.ts: a COMBO widget whose value looks like a model file and is not among the
    widget's options is a missing candidate; its url/directory (the download offer) come from the
    node's ``properties.models`` entries selected in its widgets, and from the workflow's top-level
    ``models`` (enrichWithEmbeddedMetadata). Returns name -> {"url", "directory"} (None if absent).
    """
    embedded = list(workflow.get("models", []))
    candidates: dict[str, dict] = {}
    for node in workflow["nodes"]:
        if node["type"] in NOTE_TYPES or node.get("mode") in (2, 4):  # NEVER / BYPASS
            continue
        values = node.get("widgets_values", [])
        selected = {v for v in values if isinstance(v, str) and v.strip()}
        embedded += [m for m in node.get("properties", {}).get("models", []) if m["name"] in selected]
        for spec, value in zip(widget_specs(NODE_CLASS_MAPPINGS[node["type"]]), values):
            if (spec.kind == "COMBO" and isinstance(value, str) and value.lower().endswith(MODEL_FILE_EXTENSIONS)
                    and value not in spec.choices):
                candidates[value] = {"url": None, "directory": None}
    for model in embedded:
        if model["name"] in candidates:
            entry = candidates[model["name"]]
            entry["url"] = entry["url"] or model.get("url")
            entry["directory"] = entry["directory"] or model.get("directory")
    return candidates


def _model_widget_values(workflow: dict) -> set[str]:
    return {v for n in workflow["nodes"] for v in n.get("widgets_values", [])
            if isinstance(v, str) and v.lower().endswith(MODEL_FILE_EXTENSIONS)}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_empty_model_folders_offer_every_download(path, comfy):
    workflow = load_workflow(path)
    missing = missing_models(workflow)
    # Every model file a widget names is reported missing, with a download the frontend can offer
    # into the folder the loader reads.
    assert set(missing) == _model_widget_values(workflow)
    folders = {"sam2.1_hiera_small.pt": "sam2"}
    for name, offer in missing.items():
        assert offer["url"] and offer["url"].startswith("https://") and offer["url"].endswith("/" + name)
        assert offer["directory"] == folders.get(name, "propainter"), name
    if path == workflow_path("remove_region_no_weights"):
        assert missing == {}
    if path in (workflow_path("remove_object"), workflow_path("remove_region")):
        assert {"raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth"} <= set(missing)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_nothing_missing_once_the_files_are_there(path, comfy):
    workflow = load_workflow(path)
    for name in _model_widget_values(workflow):
        folder = "sam2" if name.startswith("sam2") else "propainter"
        (comfy.models(folder) / name).write_bytes(b"weights")
    assert missing_models(workflow) == {}


# --------------------------------------------------------------------------- layout and view
def _rects(workflow: dict) -> dict[int, tuple]:
    """Each node's rectangle (title bar included) at max(saved size, computed size), as the
    frontend sizes it on load (app.ts loadGraphData: size = max(node.size, node.computeSize()))."""
    out = {}
    for node in workflow["nodes"]:
        w, h = node["size"]
        if node["type"] not in NOTE_TYPES:
            cw, ch = node_size(NODE_CLASS_MAPPINGS[node["type"]])
            w, h = max(w, cw), max(h, ch)
        out[node["id"]] = rect({"pos": node["pos"], "size": [w, h]})
    return out


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_saved_sizes_hold_the_content(path):
    # a saved size below the computed one grows on load, over the neighbours
    for node in load_workflow(path)["nodes"]:
        if node["type"] in NOTE_TYPES:
            continue
        least = node_size(NODE_CLASS_MAPPINGS[node["type"]])
        assert node["size"][0] >= least[0] and node["size"][1] >= least[1], (node["type"], node["size"], least)
        if node["type"] == "VanishSAM2VideoPrompt":
            assert tuple(node["size"]) >= editor_node_size()


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_no_two_nodes_overlap(path):
    rects = _rects(load_workflow(path))
    ids = sorted(rects)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            ra, rb = rects[a], rects[b]
            apart = ra[2] + 10 <= rb[0] or rb[2] + 10 <= ra[0] or ra[3] + 10 <= rb[1] or rb[3] + 10 <= ra[1]
            assert apart, f"nodes {a} and {b} overlap (or touch): {ra} {rb}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_the_saved_view_shows_everything_clear_of_the_sidebar_and_tabs(path):
    workflow = load_workflow(path)
    ds = workflow["extra"]["ds"]
    scale, (ox, oy) = ds["scale"], ds["offset"]
    assert scale >= MIN_SCALE  # the frontend draws widgets from this zoom on
    for node_id, (left, top, right, bottom) in _rects(workflow).items():
        screen = ((left + ox) * scale, (top + oy) * scale, (right + ox) * scale, (bottom + oy) * scale)
        assert screen[0] >= SIDEBAR_W + 8 and screen[1] >= TOPBAR_H + 8, (node_id, screen)
        assert screen[2] <= VIEWPORT[0] - 8 and screen[3] <= VIEWPORT[1] - 8, (node_id, screen)


# --------------------------------------------------------------------------- template browser
# ComfyUI lists a custom node's workflows/*.json as templates (app/custom_node_manager.py); the
# frontend titles each with its file name and shows <name>.jpg from the same folder as its picture
# (workflowTemplatesStore.ts: custom templates get title = name, mediaSubtype 'jpg').
def test_every_template_has_a_readable_title_and_its_thumbnail():
    import hashlib
    import re

    import cv2

    assert {p.stem for p in WORKFLOW_FILES} == set(TITLES.values())
    digests = set()
    for path in WORKFLOW_FILES:
        title = path.stem
        assert re.fullmatch(r"Vanish - [A-Z][a-z]+( [a-z0-9]+)+", title), f"not a readable title: {title!r}"
        thumb = path.with_suffix(".jpg")
        assert thumb.is_file(), f"{path.name} has no thumbnail {thumb.name}"
        data = thumb.read_bytes()
        assert data[:3] == b"\xff\xd8\xff" and len(data) < 60_000, (thumb.name, len(data))
        image = cv2.imdecode(__import__("numpy").frombuffer(data, "uint8"), cv2.IMREAD_COLOR)
        assert image is not None and min(image.shape[:2]) >= 256 and image.std() > 10, thumb.name
        digests.add(hashlib.sha256(data).hexdigest())
    assert len(digests) == len(WORKFLOW_FILES), "two templates share a picture"
    stray = {p.name for p in (ROOT / "workflows").iterdir()} - {
        n for p in WORKFLOW_FILES for n in (p.name, p.with_suffix(".jpg").name)}
    assert not stray, f"files the template browser would list or never show: {stray}"
