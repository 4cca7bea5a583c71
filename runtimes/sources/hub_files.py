"""Which files of a hub repository a runtime needs, chosen from the repository's file names.

A runtime whose catalogue entry reads one GGUF (llama-cpp) gets the one a quant tag names
(`:Q4_K_M`), the one a path names, or a default (Q4_K_M, or the only model in the repository),
with every part of a split GGUF (`-00001-of-00003.gguf`). The others (sentence-transformers,
diffusers) get a folder: the files their entry's `hub_files` patterns match, less the copies of
the weights they never read (ONNX, OpenVINO, TensorFlow, Flax; `.bin` beside safetensors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from huggingface_hub.utils import filter_repo_objects
from localoip.runtimes.catalogue import RUNTIMES
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.hub_ref import HubRef

DEFAULT_QUANT = "Q4_K_M"
SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
QUANT = re.compile(
    r"(?:^|[-._])(?P<quant>(?:UD-)?(?:I?Q\d+(?:_[A-Z0-9]+)*|T?Q\d_\d|[BM]?F\d+|MXFP4(?:_MOE)?))$",
    re.IGNORECASE,
)
PROJECTOR = re.compile(r"(^|[-_.])mmproj([-_.]|$)", re.IGNORECASE)
"""A vision projector shipped beside a model: loaded with it, never on its own."""

NOT_FOR_TORCH = [
    "*.onnx",
    "*onnx/*",
    "*openvino/*",
    "*coreml/*",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.tflite",
    "*.gguf",
]
"""Weights in formats the torch runtimes do not read."""
TORCH_PICKLES = (".bin", ".pt", ".pth", ".ckpt")
VARIANT = re.compile(r"^(?P<base>[^.]+)\.(?P<variant>[A-Za-z0-9_]+)\.safetensors$")


@dataclass(frozen=True, slots=True)
class GgufModel:
    """One loadable GGUF: a single file, or every part of a split one (the first loads them)."""

    files: tuple[str, ...]
    quant: str | None

    @property
    def first(self) -> str:
        return self.files[0]


def gguf_quant(filename: str) -> str | None:
    """The quantisation tag in a GGUF file name (`Q4_K_M`, `IQ4_XS`, `F16`), upper-cased."""
    name = PurePosixPath(filename).name
    split = SPLIT.match(name)
    stem = split["prefix"] if split else name.removesuffix(".gguf").removesuffix(".GGUF")
    match = QUANT.search(stem)
    return match["quant"].upper() if match else None


def gguf_models(files: Iterable[str]) -> list[GgufModel]:
    """The loadable GGUFs among a repository's files: split parts grouped, projectors left out.

    Raises SourceError for a split GGUF whose parts are not all there.
    """
    singles: list[GgufModel] = []
    splits: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for name in sorted(files):
        base = PurePosixPath(name).name
        if not base.lower().endswith(".gguf") or PROJECTOR.search(base):
            continue
        split = SPLIT.match(name)
        if split is None:
            singles.append(GgufModel((name,), gguf_quant(name)))
        else:
            splits.setdefault((split["prefix"], int(split["count"])), []).append(
                (int(split["part"]), name)
            )
    for (prefix, count), parts in splits.items():
        if sorted(number for number, _ in parts) != list(range(1, count + 1)):
            raise SourceError(
                f"the split GGUF {prefix}-*-of-{count:05d}.gguf is incomplete in the "
                f"repository: it has {len(parts)} of its {count} parts"
            )
        ordered = tuple(name for _, name in sorted(parts))
        singles.append(GgufModel(ordered, gguf_quant(ordered[0])))
    return sorted(singles, key=lambda model: model.first)


PROJECTOR_ORDER = ("F16", "BF16", "F32")
"""Projectors by preference, as llama-server -hf and Ollama choose: F16 before F32."""


def choose_projector(files: Iterable[str], model: GgufModel) -> str | None:
    """The image projector (`mmproj-*.gguf`) shipped in the model's folder: F16, then BF16,
    then F32, then any other by name; None when the repository has none there."""
    folder = PurePosixPath(model.first).parent
    found = [
        name
        for name in files
        if name.lower().endswith(".gguf")
        and PROJECTOR.search(PurePosixPath(name).name)
        and PurePosixPath(name).parent == folder
    ]

    def rank(name: str) -> tuple[int, str]:
        quant = gguf_quant(name)
        order = PROJECTOR_ORDER.index(quant) if quant in PROJECTOR_ORDER else len(PROJECTOR_ORDER)
        return order, name

    return min(found, key=rank, default=None)


def quant_list(models: list[GgufModel]) -> str:
    """The quants there are, for an error message: `Q4_K_M, Q8_0, F16`."""
    quants = sorted({m.quant or PurePosixPath(m.first).name for m in models})
    return ", ".join(quants)


def choose_gguf(ref: HubRef, files: Iterable[str]) -> GgufModel:
    """The GGUF a source names among a repository's files; SourceError says why none fits."""
    files = list(files)
    models = gguf_models(files)
    if ref.path is not None:
        for model in models:
            if ref.path in model.files:
                return model
        if ref.path in files:  # a file that is not a GGUF: the runtime says what is wrong
            return GgufModel((ref.path,), None)
        raise SourceError(f"{ref}: the repository has no file {ref.path!r}")
    if not models:
        shown = ", ".join(sorted(files)[:8]) or "no files"
        raise SourceError(
            f"{ref} has no GGUF file, and the llama-cpp runtime loads GGUF models "
            f"(it has: {shown}); pick a repository of GGUFs, often named '...-GGUF'"
        )
    if ref.quant is not None:
        matching = [m for m in models if m.quant == ref.quant.upper()]
        if not matching:
            raise SourceError(
                f"{ref}: the repository has no {ref.quant.upper()} GGUF; its quants are: "
                + quant_list(models)
            )
        return _only(ref, matching, f"{ref.quant.upper()} GGUFs")
    if len(models) == 1:
        return models[0]
    defaults = [m for m in models if m.quant == DEFAULT_QUANT]
    if not defaults:
        raise SourceError(
            f"{ref} has several GGUFs and none is {DEFAULT_QUANT}; name one as "
            f"hf:{ref.repo_id}:<QUANT>, where QUANT is one of: " + quant_list(models)
        )
    return _only(ref, defaults, f"{DEFAULT_QUANT} GGUFs")


def _only(ref: HubRef, models: list[GgufModel], what: str) -> GgufModel:
    if len(models) > 1:
        names = ", ".join(m.first for m in models)
        raise SourceError(
            f"{ref}: the repository has several {what} ({names}); name the file as "
            f"hf:{ref.repo_id}/<file>"
        )
    return models[0]


def folder_files(runtime: str, files: Iterable[str]) -> list[str]:
    """The files a folder runtime (sentence-transformers, diffusers) reads from a repository:
    those its catalogue entry's `hub_files` patterns match."""
    kept = list(
        filter_repo_objects(
            list(files),
            allow_patterns=list(RUNTIMES[runtime].hub_files or ["*"]),
            ignore_patterns=NOT_FOR_TORCH,
        )
    )
    return sorted(_prefer_safetensors(kept))


def _prefer_safetensors(files: list[str]) -> list[str]:
    """Within each folder, safetensors over pickled weights, and the plain file over variants
    (`model.fp16.safetensors`) that torch's float32 default does not load."""
    by_folder: dict[PurePosixPath, set[str]] = {}
    for name in files:
        path = PurePosixPath(name)
        by_folder.setdefault(path.parent, set()).add(path.name)
    kept = []
    for name in files:
        path = PurePosixPath(name)
        siblings = by_folder[path.parent]
        has_safetensors = any(s.endswith(".safetensors") for s in siblings)
        pickled = path.name.endswith(TORCH_PICKLES) or path.name.endswith(".bin.index.json")
        if has_safetensors and pickled:
            continue
        variant = VARIANT.match(path.name)
        if variant and f"{variant['base']}.safetensors" in siblings:
            continue
        kept.append(name)
    return kept
