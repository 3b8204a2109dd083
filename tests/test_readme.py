"""The README's snippets and file names hold: code imports what it uses, named clips exist."""
from __future__ import annotations

import ast
import re

from shared_paths import CLIPS_DIR, ROOT

README = (ROOT / "README.md").read_text()
MODULES = {"torch", "np", "numpy", "cv2", "av", "propainter_core", "vanish"}


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_python_snippets_import_the_modules_they_use():
    blocks = _python_blocks()
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {a.asname or a.name for a in node.names}
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in MODULES}
        assert used <= imported, f"snippet uses {sorted(used - imported)} without importing it:\n{block}"


def test_clip_paths_named_in_the_readme_exist():
    folders = {p.name for p in CLIPS_DIR.iterdir() if p.is_dir()}
    named = re.findall(r"`((?:%s)/[^`\s]*)`" % "|".join(map(re.escape, folders)), README)
    assert named, "the README names no test clip"
    for path in named:
        assert (CLIPS_DIR / path).exists(), f"README names {path}, which is not in {CLIPS_DIR}"
    # tennis is frames only: the README must not present tennis.mp4 as a file of the clips.
    assert not (CLIPS_DIR / "tennis" / "tennis.mp4").exists()
    assert "tennis/tennis.mp4" not in README and "`tennis/frames/`" in README
