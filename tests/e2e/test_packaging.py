"""Packaging: every package folder is listed, and every data file a runtime reads is package
data, so a non-editable install has all of the code and its files."""

from __future__ import annotations

import fnmatch
import tomllib

from support.paths import REPO


def test_every_package_folder_is_in_pyproject():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        for module in (REPO / folder).rglob("*.py"):  # a folder of modules, __init__ or not
            parts = module.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *parts)))
            assert (module.parent / "__init__.py").exists(), f"no __init__.py in {module.parent}"
    assert found <= listed, f"not packaged: {sorted(found - listed)}"


def test_the_shipped_chat_templates_are_package_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    name = "localoip.runtimes.llamacpp.templates"
    assert name in setuptools["packages"]
    patterns = setuptools["package-data"][name]
    shipped = [p.name for p in (REPO / "runtimes" / "llamacpp" / "templates").glob("*.jinja")]
    assert {"gemma3.jinja", "chatml.jinja"} <= set(shipped)
    assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in shipped)
