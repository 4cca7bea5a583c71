"""What a GGUF model is, read from its file and its loaded weights: the file to load in a
folder, its size (every part of a split one), its quantisation, trained context, architecture
and weights."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import llama_cpp
from localoip.runtimes.facts import ModelFacts
from localoip.runtimes.sources.hub_files import PROJECTOR, SPLIT

FILE_TYPES = {
    value: name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    for name, value in vars(llama_cpp).items()
    if name.startswith("LLAMA_FTYPE_") and name != "LLAMA_FTYPE_GUESSED"
}
"""GGUF `general.file_type` numbers by llama.cpp's names for them: 15 is "Q4_K_M"."""


def model_file(path: str) -> str:
    """The GGUF to load: `path` itself, or the one .gguf in the folder `path` besides an
    image projector (`mmproj-*.gguf`). FileNotFoundError for a folder with none or several."""
    if not os.path.isdir(path):
        return path
    ggufs = sorted(f for f in os.listdir(path) if f.endswith(".gguf") and not PROJECTOR.search(f))
    if len(ggufs) != 1:
        raise FileNotFoundError(f"expected one .gguf file in {path}, found {ggufs}")
    return os.path.join(path, ggufs[0])


def gguf_size(path: str) -> int:
    """Bytes of a GGUF file, or of every part of a split one (`path` is its first part)."""
    file = Path(path)
    split = SPLIT.match(file.name)
    if split is None:
        return file.stat().st_size
    parts = file.parent.glob(f"{glob.escape(split['prefix'])}-*-of-{split['count']}.gguf")
    return sum(part.stat().st_size for part in parts if SPLIT.match(part.name))


def gguf_facts(llm: llama_cpp.Llama, path: str) -> ModelFacts:
    """n_ctx in use, the trained context from the GGUF's metadata, its file type, the
    bytes of its file at `path` (every part of a split one), its architecture, its number of
    weights, and whether it has fill-in-the-middle tokens."""
    meta = llm.metadata
    architecture = meta.get("general.architecture")
    trained = meta.get(f"{architecture}.context_length")
    file_type = meta.get("general.file_type")
    model = llm._model
    fim = (model.token_prefix(), model.token_suffix(), model.token_middle())
    return ModelFacts(
        context_length=llm.n_ctx(),
        trained_context_length=int(trained) if trained else None,
        quantization=FILE_TYPES.get(int(file_type)) if file_type else None,
        file_size=gguf_size(path),
        architecture=architecture,
        parameters=int(llama_cpp.llama_model_n_params(llm.model)),
        fills_in=-1 not in fim,
    )
