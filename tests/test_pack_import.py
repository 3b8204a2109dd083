"""The pack imports the way ComfyUI imports it, and its node ids are safe."""
from __future__ import annotations

import importlib.util
import sys

from shared_paths import ROOT

# Core ComfyUI node ids a custom node must never reuse (ComfyUI would silently ignore ours).
CORE_IDS = {"SaveVideo", "LoadVideo", "SaveImage", "LoadImage", "ImageScale", "ProPainterInpaint"}


def test_loads_like_comfyui_with_folder_name():
    name = ROOT.name + "_as_comfy"  # ComfyUI uses the folder name; a fresh name gives a fresh import
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        mappings = module.NODE_CLASS_MAPPINGS
        assert isinstance(mappings, dict)
        assert set(module.NODE_DISPLAY_NAME_MAPPINGS) <= set(mappings)
        assert module.WEB_DIRECTORY == "./web"
        for node_id, cls in mappings.items():
            assert node_id.startswith("Vanish"), node_id
            assert cls.__name__ == node_id, f"class {cls.__name__} should be named like its id {node_id}"
            assert node_id not in CORE_IDS
            assert hasattr(cls, "INPUT_TYPES") and hasattr(cls, "FUNCTION")
            assert getattr(cls, "CATEGORY", "").startswith("Vanish"), node_id
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def test_readme_documents_every_node_and_the_test_command():
    import vanish

    readme = (ROOT / "README.md").read_text()
    for node_id in vanish.NODE_CLASS_MAPPINGS:
        assert f"`{node_id}`" in readme, f"README's node table misses {node_id}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./vanish test" in readme and "./vanish test" in ci  # CI runs what the README tells developers
    command = ".venv/bin/python -m pytest -q tests"
    assert command in (ROOT / "vanish").read_text() and command in readme


def test_requirements_never_touch_torch():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    names = {l.split(">")[0].split("=")[0].split("<")[0].strip().lower() for l in lines if l}
    assert not names & {"torch", "torchvision", "torchaudio"}
    assert not any("==" in l for l in lines), "pins could force a downgrade"
    # One upper bound, and only to keep the user's numpy where it is: OpenCV 4.12 needs numpy
    # >=2,<2.3 and 4.13+ numpy >= 2 (their METADATA; .ci/check_install_numpy.sh installs both ways).
    bounded = [l for l in lines if "<" in l]
    assert bounded == ["opencv-python-headless>=4.10.0.84,<4.12"], bounded
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"opencv-python-headless>=4.10.0.84,<4.12"' in pyproject


def test_every_input_and_output_has_a_tooltip():
    import vanish

    for node_id, cls in vanish.NODE_CLASS_MAPPINGS.items():
        assert cls.DESCRIPTION, node_id
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, decl in spec.get(section, {}).items():
                options = decl[1] if len(decl) > 1 and isinstance(decl[1], dict) else {}
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES), node_id
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES), node_id
