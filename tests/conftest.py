"""Test set-up: load the pack the way ComfyUI does, and give tests a fake ComfyUI.

* The pack is imported once as the package ``vanish`` (ComfyUI names it after its folder), so
  tests write ``from vanish.nodes import masks``. ``propainter_core`` is also importable on its
  own (the pack root is on ``sys.path`` through pytest's ``pythonpath`` setting).
* ``comfy`` fixture: ComfyUI's folders (input/output/temp/models) in a temporary directory,
  through the standalone side of ``nodes/_comfy.py``. No ComfyUI is needed.
* ``parity_checkpoints`` fixture: the three official-format ``.pth`` files rebuilt from the
  manifests in ../shared/propainter_parity, made once per test session.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared_paths import CLIPS_DIR, PARITY_DIR, ROOT


def _load_pack_as(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_load_pack_as("vanish")
# pytest names test modules after their folders relative to tests/ (e.g. propainter_core.test_x)
# and creates empty parent modules for names not yet imported: import the real core first.
import propainter_core  # noqa: E402,F401


@dataclass
class FakeComfy:
    base: Path

    @property
    def input(self) -> Path:
        return self.base / "input"

    @property
    def output(self) -> Path:
        return self.base / "output"

    @property
    def temp(self) -> Path:
        return self.base / "temp"

    def models(self, name: str) -> Path:
        path = self.base / "models" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def comfy(tmp_path, monkeypatch) -> FakeComfy:
    """ComfyUI's folders in ``tmp_path`` (the standalone bridge reads VANISH_BASE_DIR)."""
    from vanish.nodes import _comfy

    monkeypatch.setenv("VANISH_BASE_DIR", str(tmp_path))
    monkeypatch.setattr(_comfy, "_standalone_model_folders", {})
    monkeypatch.setattr(_comfy, "_cancel_requested", False)
    fake = FakeComfy(tmp_path)
    for folder in (fake.input, fake.output, fake.temp):
        folder.mkdir(parents=True, exist_ok=True)
    return fake


@pytest.fixture(scope="session")
def parity_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """``{"raft": .pth, "flow_completion": .pth, "generator": .pth}`` with the parity weights."""
    if not PARITY_DIR.is_dir():
        pytest.fail(f"parity data missing: {PARITY_DIR} (set VANISH_SHARED)")
    from parity_weights import MANIFESTS, write_checkpoint

    folder = tmp_path_factory.mktemp("parity_weights")
    return {name: write_checkpoint(name, folder) for name in MANIFESTS}


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    if not CLIPS_DIR.is_dir():
        pytest.fail(f"clips missing: {CLIPS_DIR} (set VANISH_SHARED)")
    return CLIPS_DIR
