"""Build and load a runtime in this process: its source resolved, its library checked, its
class imported from the catalogue."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TypeVar

import msgspec
from localoip.runtimes.capabilities import Runtime
from localoip.runtimes.catalogue import RUNTIMES, missing_library
from localoip.runtimes.options import DraftModel
from localoip.runtimes.sources.source import Source, resolve_files

log = logging.getLogger("localoip")
T = TypeVar("T", bound=msgspec.Struct)


def load_runtime(runtime: str, source: Source, options: msgspec.Struct) -> Runtime:
    """Resolve the source (downloading it if it must), then build and load the runtime here.

    Used by runner processes, by the server for the remote runtimes, and by `localoip
    doctor`'s probes. Raises ModuleNotFoundError naming the extra to install when the
    runtime's library is missing, SourceError for a source that is not here, and whatever
    the runtime's load() raises.
    """
    missing = missing_library(runtime)
    if missing is not None:
        raise ModuleNotFoundError(missing)
    path, projector = resolve_files(source, runtime)
    options = with_draft(with_projector(options, projector, path), runtime)
    loaded = RUNTIMES[runtime].load_class()(path, options)
    loaded.load()
    return loaded


def with_projector(options: T, projector: str | None, where: str) -> T:
    """`options` with the image projector an `hf:` repository shipped beside its GGUF, when
    they name none themselves (`mmproj` unset) and llama.cpp has mtmd to read it."""
    if projector is None or getattr(options, "mmproj", "") is not None:
        return options
    if not _has_mtmd():
        log.info("%s: its image projector is not used: llama-cpp-python has no mtmd", where)
        return options
    return msgspec.structs.replace(options, mmproj=projector)


def with_draft(options: T, runtime: str) -> T:
    """`options` with their draft model's source (options.DraftModel, set by config) resolved
    to its files here, as the model's own source is (downloading it if it must)."""
    draft = getattr(options, "draft", None)
    if not isinstance(draft, DraftModel) or draft.kind == "path":
        return options
    path, _ = resolve_files(Source(draft.kind, draft.source), runtime)
    return msgspec.structs.replace(options, draft=DraftModel(draft.name, "path", path))


def _has_mtmd() -> bool:
    """Whether the installed llama-cpp-python has llama.cpp's multimodal library (without
    importing it: the server process never loads llama.cpp)."""
    spec = importlib.util.find_spec("llama_cpp")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if any((Path(folder) / "lib").glob("*mtmd*")):
            return True
    return False
