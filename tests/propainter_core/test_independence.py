"""``propainter_core`` stands alone: importing it loads no ComfyUI, OpenCV, SAM 2 or video code.

The check runs in a fresh interpreter (``python -I``: no user site, no PYTHONPATH, no current
directory) whose ``sys.path`` holds the installed packages plus only the pack root, then looks
at ``sys.modules``. A second test feeds the same checker a module that does import a forbidden
name, to show the check can fail.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared_paths import ROOT

CORE_MODULES = (
    "propainter_core",
    "propainter_core.checkpoints",
    "propainter_core.config",
    "propainter_core.ops",
    "propainter_core.raft",
    "propainter_core.flow_completion",
    "propainter_core.generator",
    "propainter_core.pipeline",
)
FORBIDDEN = ("comfy", "folder_paths", "server", "cv2", "sam2", "torchvision", "nodes", "kornia",
             "av", "vanish")

_CHECKER = """
import importlib, importlib.util, json, sys
sys.path[:0] = {paths!r}
imported = []
for name in {modules!r}:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
        imported.append(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(json.dumps({{"imported": imported, "forbidden": loaded, "torch": "torch" in sys.modules}}))
"""


def _run_checker(modules: tuple[str, ...], paths: list[str]) -> dict:
    code = _CHECKER.format(paths=paths, modules=modules, forbidden=FORBIDDEN)
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=ROOT.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_imports_no_host_or_vision_packages():
    report = _run_checker(CORE_MODULES, [str(ROOT)])
    assert {"propainter_core", "propainter_core.raft", "propainter_core.checkpoints"} <= set(
        report["imported"])
    assert report["torch"]
    assert report["forbidden"] == [], (
        f"propainter_core pulled in {report['forbidden']}; the core may import only torch, "
        "safetensors and the standard library")


def test_checker_catches_a_forbidden_import(tmp_path: Path):
    (tmp_path / "cv2.py").write_text("")  # a stand-in, so the test needs no OpenCV
    (tmp_path / "leaky_core.py").write_text("import cv2\n")
    report = _run_checker(("leaky_core",), [str(tmp_path)])
    assert report["imported"] == ["leaky_core"]
    assert report["forbidden"] == ["cv2"]
