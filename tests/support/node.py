"""The JavaScript clients the e2e tests run unchanged (tests/e2e/node: package.json, pinned by
its lock, installed by .ci/setup with `npm ci`), and the skip where node or a package is not."""

from __future__ import annotations

import shutil

import pytest

from support.paths import REPO

NODE = REPO / "tests" / "e2e" / "node"


def installed(package: str) -> None:
    """Skip the test unless node runs and `package` is installed in tests/e2e/node."""
    if shutil.which("node") is None or not (NODE / "node_modules" / package).is_dir():
        pytest.skip(f"no node, or no {package} in tests/e2e/node (bash .ci/setup)")
