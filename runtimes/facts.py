"""What a loaded model is (ModelFacts), as the protocols' model lists and cards show it, and the
size of its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What a loaded model is, as /v1/models (in OpenAI's shape and Anthropic's), the model
    card, the repository index and Ollama's /api/show and /api/tags show it.

    Every field is None (or False) when the runtime cannot tell (a remote model, an image
    pipeline's context).
    """

    context_length: int | None = None  # tokens per sequence in use (llama.cpp's n_ctx)
    trained_context_length: int | None = None  # the most the model was trained for
    context_sized: str | None = None  # how `n_ctx = "auto"` chose context_length, in words
    quantization: str | None = None  # a GGUF file type such as "Q4_K_M", or a torch dtype
    file_size: int | None = None  # bytes of the model's files on disk
    architecture: str | None = None  # a GGUF's general.architecture, such as "llama"
    parameters: int | None = None  # how many weights the model has
    chat_template: str | None = None  # the Jinja template its chats render with by default
    reasons: bool = False  # its replies' format reads reasoning apart from the answer
    fills_in: bool = False  # it has fill-in-the-middle tokens (a completion's `suffix`)
    vision: bool = False  # its chats read images (a llama.cpp model with an `mmproj`)


def disk_size(path: str) -> int | None:
    """Bytes of a file, or of every file under a folder (links followed); None if absent."""
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    if root.is_dir():
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return None
