"""Build and load a runtime in this process: its source resolved, its library checked, its
class imported from the catalogue."""

from __future__ import annotations

import msgspec
from localoip.runtimes.capabilities import Runtime
from localoip.runtimes.catalogue import RUNTIMES, missing_library
from localoip.runtimes.sources.source import Source, resolve


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
    loaded = RUNTIMES[runtime].load_class()(resolve(source, runtime), options)
    loaded.load()
    return loaded
