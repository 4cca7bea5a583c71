"""Packaging: every package folder is listed, so a non-editable install has all of the code."""

from __future__ import annotations

import tomllib

from support.paths import REPO


def test_every_package_folder_is_in_pyproject():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *parts)))
    assert found <= listed, f"not packaged: {sorted(found - listed)}"
