"""The layer contracts in pyproject.toml hold: `lint-imports` passes, with no import ignored; and
the size limits of the shape hold: no module over 450 lines, no class over 200."""

from __future__ import annotations

import ast
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


def test_no_module_over_450_lines_and_no_class_over_200():
    too_long = []
    for path in sorted([*(REPO / "app").rglob("*.py"), *(REPO / "runtimes").rglob("*.py")]):
        text = path.read_text()
        name = path.relative_to(REPO)
        if len(text.splitlines()) > 450:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 200:
                too_long.append(f"{name}: class {node.name}, {node.end_lineno - node.lineno + 1}")
    assert too_long == []
