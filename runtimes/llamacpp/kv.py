"""A llama.cpp model's KV cache: its type (`kv_cache_type`), the bytes a token takes in it
by ggml's own type sizes, read from the GGUF's metadata, and the context "auto" chooses."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import llama_cpp
from llama_cpp import _ggml
from llama_cpp import _internals as internals
from localoip.runtimes.devices import context_tokens

log = logging.getLogger("localoip")

KV_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}
"""ggml's type ids for the `kv_cache_type` option's values."""

_row_size = _ggml.libggml.ggml_row_size
_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
_row_size.restype = ctypes.c_size_t
_block_size = _ggml.libggml.ggml_blck_size
_block_size.argtypes = [ctypes.c_int]
_block_size.restype = ctypes.c_int64


def cache_arguments(kv_type: str, flash_attn: bool) -> dict[str, Any]:
    """llama-cpp-python's `Llama` arguments for a cache type: the ggml type of its keys and
    values, and flash attention when asked (`flash_attn`) or for a quantized type. llama.cpp
    creates no context whose V cache is quantized without flash attention, and ggml's CPU
    backend has the kernels; an f16 cache has it as asked (on by default, options.py)."""
    ggml_type = KV_TYPES[kv_type]
    return {"type_k": ggml_type, "type_v": ggml_type, "flash_attn": flash_attn or kv_type != "f16"}


def row_bytes(kv_type: str, values: int) -> int:
    """Bytes of `values` numbers of a cache type, by ggml's own sizes (ggml_row_size: f16 is
    2 bytes a number; q8_0 34 bytes a block of 32, q4_0 18)."""
    return int(_row_size(KV_TYPES[kv_type], values))


def ggml_block(kv_type: str) -> int:
    """Numbers in one block of a cache type (1 for f16, 32 for q8_0 and q4_0)."""
    return int(_block_size(KV_TYPES[kv_type]))


def _number(text: str | None) -> int | None:
    """A metadata value as a number: an integer, or the largest of an array of them (a
    per-layer head count); None when absent."""
    if not text:
        return None
    values = [int(part) for part in text.strip("[]").split(",") if part.strip()]
    return max(values) if values else None


@dataclass(frozen=True, slots=True)
class KvShape:
    """What sizes a model's KV cache: its layers, its KV heads and their key and value sizes,
    and the context it was trained for (None: unknown)."""

    layers: int
    kv_heads: int
    key_head: int
    value_head: int
    trained: int | None

    @classmethod
    def of(cls, metadata: Mapping[str, str]) -> KvShape:
        """The shape a GGUF's metadata gives (`<arch>.block_count`, `.attention.head_count`,
        `.head_count_kv`, `.key_length`, `.value_length`, `.embedding_length`, and
        `.context_length`), the head size defaulting to the width over the heads, as in
        llama.cpp. Every layer counts at the full context: llama-cpp-python keeps a full
        cache for sliding-window layers too (`swa_full`)."""
        arch = metadata.get("general.architecture", "")

        def key(name: str) -> int | None:
            return _number(metadata.get(f"{arch}.{name}"))

        heads = key("attention.head_count") or 1
        head = (key("embedding_length") or 0) // heads
        return cls(
            layers=key("block_count") or 0,
            kv_heads=key("attention.head_count_kv") or heads,
            key_head=key("attention.key_length") or head,
            value_head=key("attention.value_length") or head,
            trained=key("context_length"),
        )

    def check(self, kv_type: str) -> None:
        """ValueError, saying what to do, when llama.cpp cannot keep this model's cache in
        `kv_type`: a quantized type needs head sizes of whole blocks (32 numbers)."""
        block = ggml_block(kv_type)
        if self.key_head % block or self.value_head % block:
            raise ValueError(
                f"kv_cache_type {kv_type!r} needs attention heads of a multiple of {block} "
                f"numbers; this model's are {self.key_head} (keys) and {self.value_head} "
                '(values): use "f16"'
            )

    def bytes_per_token(self, kv_type: str) -> int:
        """Bytes one token takes in the cache, keys and values in every layer."""
        keys = row_bytes(kv_type, self.key_head * self.kv_heads)
        return self.layers * (keys + row_bytes(kv_type, self.value_head * self.kv_heads))


def read_shape(path: str) -> KvShape:
    """The KV shape of the GGUF at `path`, from its metadata alone: llama.cpp reads the file
    without its weights (`vocab_only`; about 0.1 s for SmolLM2's vocabulary, 0.5 s for
    Gemma 3's 262k). ValueError, as llama-cpp-python raises, for a file it cannot read."""
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = internals.LlamaModel(path_model=path, params=params, verbose=False)
    try:
        return KvShape.of(model.metadata())
    finally:
        model.close()


def kv_bytes_per_sequence(llm: llama_cpp.Llama, kv_type: str) -> int:
    """The KV cache of one sequence of the loaded model at its full context, of this type."""
    return llm.n_ctx() * KvShape.of(llm.metadata).bytes_per_token(kv_type)


def chosen_context(
    path: str, setting: int | str, kv_type: str, sequences: int, available: int
) -> tuple[int, str]:
    """llama.cpp's n_ctx for a model's `n_ctx` option, and why: a number as it is; "auto"
    from the GGUF's trained context and the KV cache `sequences` of it take in `kv_type`
    (devices.context_tokens), logged at INFO with the trained context and the budget.
    ValueError when the model's heads cannot be kept in a quantized `kv_type` (read from
    the file first, as llama.cpp would only say that it failed)."""
    if setting != "auto" and kv_type == "f16":
        return context_tokens(setting, None, 0, sequences, available)
    shape = read_shape(path)
    shape.check(kv_type)
    if setting != "auto":
        return context_tokens(setting, None, 0, sequences, available)
    per_token = shape.bytes_per_token(kv_type)
    n_ctx, why = context_tokens(setting, shape.trained, per_token, sequences, available)
    log.info(
        "%s: n_ctx %d of the trained %s (%s; a %s KV cache of %d bytes a token, %.1f GiB "
        "available)",
        path,
        n_ctx,
        shape.trained or "unknown",
        why,
        kv_type,
        per_token,
        available / 2**30,
    )
    return n_ctx, why
