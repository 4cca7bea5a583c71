"""Where things are: the repository, the shared folder beside it, and this venv's `localoip`."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
LOCALOIP = Path(sys.executable).with_name("localoip")
