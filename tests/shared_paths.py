"""Where the shared test data lives: ../shared beside the checkout (override: VANISH_SHARED)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("VANISH_SHARED", ROOT.parent / "shared"))
PARITY_DIR = SHARED_DIR / "propainter_parity"
CLIPS_DIR = SHARED_DIR / "clips"
