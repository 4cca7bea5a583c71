"""The one catalogue of runtimes: each models.toml `runtime` name, with its class, options,
where it runs and its KServe model format. Nothing heavy is imported here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import msgspec
from localoip.runtimes.capabilities import Runtime
from localoip.runtimes.extras import missing_library
from localoip.runtimes.options import (
    DiffusersOptions,
    LlamaCppOptions,
    OipOptions,
    OpenAIOptions,
    SentenceTransformersOptions,
)
from localoip.runtimes.sources.source import Source, resolve


@dataclass(frozen=True, slots=True)
class RuntimeKind:
    name: str  # as models.toml spells it
    cls: str  # "module:Class", imported only when a model of this kind loads
    options: type[msgspec.Struct]
    local: bool  # runs a model on this machine, in a runner process; else an HTTP client
    model_format: str | None = None  # KServe's name for the format, for local runtimes

    def load_class(self) -> type[Runtime]:
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


RUNTIMES: dict[str, RuntimeKind] = {
    kind.name: kind
    for kind in (
        RuntimeKind(
            "llama-cpp",
            "localoip.runtimes.llamacpp.runtime:LlamaCppRuntime",
            LlamaCppOptions,
            True,
            "gguf",
        ),
        RuntimeKind(
            "sentence-transformers",
            "localoip.runtimes.sbert:SentenceTransformersRuntime",
            SentenceTransformersOptions,
            True,
            "sentence-transformers",
        ),
        RuntimeKind(
            "diffusers",
            "localoip.runtimes.diffusion:DiffusersRuntime",
            DiffusersOptions,
            True,
            "diffusers",
        ),
        RuntimeKind(
            "openai", "localoip.runtimes.remote.openai:OpenAIRemoteRuntime", OpenAIOptions, False
        ),
        RuntimeKind("oip", "localoip.runtimes.remote.oip:OipRemoteRuntime", OipOptions, False),
    )
}
"""Every runtime models.toml may name."""


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
