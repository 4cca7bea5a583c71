"""Which pip extra of localoip brings each runtime's libraries, so that a runtime whose
library is not installed is reported as a reason to act on, not an ImportError."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Extra:
    """The modules a runtime imports, and the extra that installs them."""

    modules: tuple[str, ...]
    extra: str


EXTRAS = {
    "llama-cpp": Extra(("llama_cpp",), "llama"),
    "sentence-transformers": Extra(("torch", "sentence_transformers"), "embeddings"),
    "diffusers": Extra(("torch", "transformers", "diffusers"), "images"),
}
"""By models.toml runtime name; the remote runtimes need nothing beyond the base install."""


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_library(runtime: str, is_installed: Callable[[str], bool] = installed) -> str | None:
    """Why `runtime` cannot run here, naming the extra to install; None when it can."""
    need = EXTRAS.get(runtime)
    if need is None:
        return None
    missing = [module for module in need.modules if not is_installed(module)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"the {runtime} runtime needs {' and '.join(missing)}, which {verb} not installed: "
        f"pip install 'localoip[{need.extra}]'"
    )
