"""The shipped workflows: they name only existing nodes, their widget values fit, and they run.

The run uses real clips from ../shared/clips placed in a fake ComfyUI input folder under the
names the workflows reference, random-weight models in the model folders (no weights can be
downloaded), and fewer frames than a user would load, so CI stays fast.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from make_workflows import TITLES, workflow_path
from parity_weights import MANIFESTS, OFFICIAL_FILE_NAMES, write_checkpoint
from shared_paths import ROOT
from vanish import NODE_CLASS_MAPPINGS
from workflow_tools import lint_workflow, load_workflow, run_workflow, widget_specs

WORKFLOW_FILES = sorted((ROOT / "workflows").glob("*.json"))
FRAMES = 4  # frames each workflow loads in the test (frame_load_cap override)


def _write_tennis_mp4(clips_dir: Path, path: Path, count: int = 8) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 432, 240, "yuv420p"
        for index in range(count):
            bgr = cv2.imread(str(clips_dir / "tennis" / "frames" / f"{index:05d}.png"))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr[:, :, ::-1]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture
def workflow_env(comfy, clips_dir, parity_checkpoints, monkeypatch):
    """Input files and model files every shipped workflow references."""
    _write_tennis_mp4(clips_dir, comfy.input / "tennis.mp4")
    shutil.copy(clips_dir / "running_car" / "running_car.mp4", comfy.input / "running_car.mp4")
    shutil.copy(clips_dir / "running_car" / "mask_logo.png", comfy.input / "mask_logo.png")
    for demo in (ROOT / "examples").glob("vanish_shadow_demo*.mp4"):  # the effects demo (issue 12)
        shutil.copy(demo, comfy.input / demo.name)
    for name in MANIFESTS:
        shutil.copy(parity_checkpoints[name], comfy.models("propainter") / OFFICIAL_FILE_NAMES[name])
    # A random-weight SAM 2.1 tiny under the workflows' file name; the loader detects the real
    # size from the keys. Built at a small input size so CPU tracking takes seconds.
    from sam2_testing import IMAGE_SIZE, tiny_predictor
    from vanish.nodes.ops import sam2_loader

    torch.save({"model": tiny_predictor().state_dict()}, comfy.models("sam2") / "sam2.1_hiera_small.pt")
    real_load = sam2_loader.load_sam2
    monkeypatch.setattr(sam2_loader, "load_sam2",
                        lambda path, precision="auto", device=None, image_size=None:
                        real_load(path, precision, device, IMAGE_SIZE))
    return comfy


def test_workflows_are_shipped():
    names = {p.stem for p in WORKFLOW_FILES}
    assert set(TITLES.values()) <= names


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_workflow_lint(path, workflow_env):
    workflow = load_workflow(path)
    assert lint_workflow(workflow, NODE_CLASS_MAPPINGS) == []
    # Every model a loader node names is listed for the frontend's download offer.
    listed = {m["name"] for m in workflow.get("models", [])}
    for node in workflow["nodes"]:
        for model in node.get("properties", {}).get("models", []):
            assert model["name"] in listed and model["url"].startswith("https://")


def test_lint_catches_a_shifted_widget_value(workflow_env):
    workflow = load_workflow(workflow_path("remove_region"))
    node = next(n for n in workflow["nodes"] if n["type"] == "VanishMaskDilateBlur")
    node["widgets_values"].insert(0, 3)  # what a renamed/added input does to saved graphs
    assert any("widget values" in p for p in lint_workflow(workflow, NODE_CLASS_MAPPINGS))
    node["widgets_values"].pop(0)
    node["widgets_values"][1] = "hexagon"
    assert any("'shape'" in p for p in lint_workflow(workflow, NODE_CLASS_MAPPINGS))
    workflow["nodes"][0]["type"] = "SaveVideo"
    assert any("unknown node id" in p for p in lint_workflow(workflow, NODE_CLASS_MAPPINGS))


def test_upload_value_is_last_like_the_frontend_saves_it():
    specs = widget_specs(NODE_CLASS_MAPPINGS["VanishLoadVideoFrames"])
    assert specs[-1].kind == "UPLOAD" and specs[0].name == "video"


def _original_frames(results: dict, workflow: dict) -> torch.Tensor:
    loader = next(n for n in workflow["nodes"] if n["type"] == "VanishLoadVideoFrames")
    return results[loader["id"]][0]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.stem)
def test_workflow_runs_headless(path, workflow_env):
    workflow = load_workflow(path)
    overrides = {("VanishLoadVideoFrames", "frame_load_cap"): FRAMES,
                 # random weights at full size would take minutes on CPU: half size is enough
                 ("VanishProPainterInpaint", "scale"): 0.5, ("VanishRemoveObjectStreaming", "scale"): 0.5}
    results = run_workflow(workflow, NODE_CLASS_MAPPINGS, overrides)
    by_type = {n["type"]: n["id"] for n in workflow["nodes"]}
    saver = by_type.get("VanishSaveVideo", by_type.get("VanishRemoveObjectStreaming"))
    saved = Path(results[saver][0])
    assert saved.exists() and saved.stat().st_size > 0
    assert saved.resolve().is_relative_to(workflow_env.output.resolve())
    if "VanishLoadVideoFrames" not in by_type:  # the streaming node reads the whole file itself
        with av.open(str(saved)) as container:
            assert container.streams.video[0].frames == 8  # all of tennis.mp4
        return
    original = _original_frames(results, workflow)
    assert original.shape[0] == FRAMES
    if "VanishCompositeFrames" in by_type:
        out = results[by_type["VanishCompositeFrames"]][0]
        assert out.shape == original.shape
        mask_source = next(l for l in workflow["links"]
                           if l[3] == by_type["VanishCompositeFrames"] and l[5] == "MASK")
        mask = results[mask_source[1]][mask_source[2]]
        outside = (mask == 0).unsqueeze(-1).expand_as(out)
        assert torch.equal(out[outside], original[outside])  # bit-identical outside the mask
    if "VanishWarpErrorMetric" in by_type:
        mean, per_frame, _plot = results[by_type["VanishWarpErrorMetric"]]
        assert np.isfinite(mean) and len(json.loads(per_frame)) >= 1
