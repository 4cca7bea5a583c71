"""The one catalogue of runtimes: each models.toml `runtime` name, with its class, options,
where it runs, its KServe model format, the pip extra that brings its libraries, and the
files that make its models. Nothing heavy is imported here, and nothing of the server.

Adding a runtime is one entry here; `sources/` reads `marks` and `hub_files` to choose a
repository's files, `loading.load_runtime` reads `extra` and `cls`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from localoip.runtimes.capabilities import Runtime
from localoip.runtimes.options import (
    DiffusersOptions,
    LlamaCppOptions,
    ModelOptions,
    OipOptions,
    OpenAIOptions,
    SentenceTransformersOptions,
    WhisperOptions,
)


@dataclass(frozen=True, slots=True)
class Extra:
    """The modules a runtime imports, and the pip extra of localoip that installs them."""

    modules: tuple[str, ...]
    name: str


@dataclass(frozen=True, slots=True)
class RuntimeKind:
    """One runtime models.toml may name."""

    name: str  # as models.toml spells it
    cls: str  # "module:Class", imported only when a model of this kind loads
    options: type[ModelOptions]
    local: bool  # runs a model on this machine, in a runner process; else an HTTP client
    model_format: str | None = None  # KServe's name for the format, for local runtimes
    extra: Extra | None = None  # None: the base install is enough (the remote runtimes)
    # Lower-cased file-name patterns, relative to a model's folder, that say the folder (or a
    # hub repository) holds a model of this kind; a GGUF pattern also matches a file's name.
    marks: tuple[str, ...] = ()
    # The patterns of a hub repository's files it reads; None: one GGUF, chosen by its quant
    # tag or path with every part of a split file (sources/hub_files.choose_gguf).
    hub_files: tuple[str, ...] | None = ("*",)

    @property
    def one_gguf(self) -> bool:
        """Whether it loads one GGUF (which a hub source picks by quant), not a folder."""
        return self.hub_files is None

    def load_class(self) -> type[Runtime]:
        """Import the runtime's class (its library with it); ImportError when it is missing."""
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
            Extra(("llama_cpp",), "llama"),
            marks=("*.gguf",),
            hub_files=None,
        ),
        RuntimeKind(
            "sentence-transformers",
            "localoip.runtimes.sbert:SentenceTransformersRuntime",
            SentenceTransformersOptions,
            True,
            "sentence-transformers",
            Extra(("torch", "sentence_transformers"), "embeddings"),
            marks=("modules.json", "config_sentence_transformers.json"),
        ),
        RuntimeKind(
            "diffusers",
            "localoip.runtimes.diffusion:DiffusersRuntime",
            DiffusersOptions,
            True,
            "diffusers",
            Extra(("torch", "transformers", "diffusers"), "images"),
            marks=("model_index.json",),
            # each component's folder; not the root checkpoints beside them
            hub_files=("model_index.json", "*/*"),
        ),
        RuntimeKind(
            "whisper",
            "localoip.runtimes.whisper:WhisperRuntime",
            WhisperOptions,
            True,
            "whisper",
            Extra(("faster_whisper", "av"), "audio"),
            # a CTranslate2 model folder (faster-whisper's format): its vocabulary file
            marks=("vocabulary.json", "vocabulary.txt"),
            hub_files=("model.bin", "*.json", "vocabulary.*"),
        ),
        RuntimeKind(
            "openai", "localoip.runtimes.remote.openai:OpenAIRemoteRuntime", OpenAIOptions, False
        ),
        RuntimeKind("oip", "localoip.runtimes.remote.oip:OipRemoteRuntime", OipOptions, False),
    )
}
"""Every runtime models.toml may name."""


def runtime_for_files(names: Iterable[str]) -> str | None:
    """The runtime whose `marks` a model's files match, or None when none does.

    `names` are paths relative to the model's folder (`unet/config.json`), a hub repository's
    file names, or a single file's own name (`model.gguf`); matching ignores case. A mark that
    names a file (a folder's own index, such as diffusers' model_index.json) tells more than a
    pattern (a GGUF somewhere beside it), so named marks are tried first, then patterns, each
    in the catalogue's order.
    """
    lowered = [name.lower() for name in names]
    for named in (True, False):
        for kind in RUNTIMES.values():
            marks = [mark for mark in kind.marks if _is_pattern(mark) != named]
            if any(fnmatchcase(name, mark) for mark in marks for name in lowered):
                return kind.name
    return None


def _is_pattern(mark: str) -> bool:
    return any(c in mark for c in "*?[")


def installed(module: str) -> bool:
    """Whether `module` can be imported here, found without importing it."""
    return importlib.util.find_spec(module) is not None


def missing_library(runtime: str, is_installed: Callable[[str], bool] = installed) -> str | None:
    """Why `runtime` cannot run here, naming the extra to install; None when it can."""
    need = RUNTIMES[runtime].extra
    if need is None:
        return None
    missing = [module for module in need.modules if not is_installed(module)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"the {runtime} runtime needs {' and '.join(missing)}, which {verb} not installed: "
        f"pip install 'localoip[{need.name}]'"
    )
