"""The prompt editor in a real browser: runs ``tests/web/editor.test.mjs`` (playwright-core + chromium).

The script serves ``tests/web/page`` (stand-ins for ComfyUI's ``app``/``api`` and a fake server
that draws numbered frames) together with the pack's ``web/`` folder on 127.0.0.1 and checks
click-to-frame mapping at several node sizes, zooms and aspect ratios, editing, the JSON round
trip, scrubbing requests, the preview and last-run frames. Set-up: ``apt-get install -y chromium
nodejs npm`` and ``npm ci`` in ``tests/web``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("VANISH_CHROMIUM", "/usr/bin/chromium"))
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed: apt-get install -y nodejs npm")
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium is not installed at {CHROMIUM}: "
                                                  "apt-get install -y chromium")
def test_prompt_editor_in_chromium():
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run `npm ci` in tests/web")
    proc = subprocess.run([NODE, str(HERE / "editor.test.mjs")], cwd=HERE, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "VANISH_CHROMIUM": str(CHROMIUM)})
    report = proc.stdout + proc.stderr
    failed = [line for line in report.splitlines() if not line.startswith("ok ")]
    assert proc.returncode == 0, "browser checks failed:\n" + "\n".join(failed)
    assert "all checks passed" in proc.stdout
    assert proc.stdout.count("\nok ") >= 50, report  # the scenarios really ran
