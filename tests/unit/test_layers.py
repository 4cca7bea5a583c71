"""The layer contracts in pyproject.toml hold: `lint-imports` passes, with no import ignored."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from support.paths import REPO


def test_lint_imports_passes():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_contract_ignores_an_import():
    linter = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert linter["contracts"]
    for contract in linter["contracts"]:
        assert "ignore_imports" not in contract, contract["name"]
