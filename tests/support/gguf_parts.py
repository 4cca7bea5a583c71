"""Pieces every test GGUF shares: GPT-2's byte-level vocabulary, and a writer for a llama-
architecture GGUF with a gpt2-style BPE tokenizer and a chat template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def gpt2_bytes() -> list[tuple[int, str]]:
    """(byte, unicode char) pairs of GPT-2's byte-to-unicode table, in GPT-2's vocab order."""
    direct = [*range(33, 127), *range(161, 173), *range(174, 256)]
    rest = [b for b in range(256) if b not in direct]
    return [(b, chr(b)) for b in direct] + [(b, chr(256 + i)) for i, b in enumerate(rest)]


BYTE_CHAR = dict(gpt2_bytes())


def byte_text(data: bytes) -> str:
    """How a gpt2-style vocabulary spells `data` (a NORMAL token's text): one char per byte."""
    return "".join(BYTE_CHAR[b] for b in data)


# A chat template's text, or named templates as a list of {"name": ..., "template": ...}.
Template = str | Sequence[Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Vocab:
    """A gpt2-style BPE tokenizer: token texts and types (gguf.TokenType), merges, and the ids
    of its bos/eos/eot/eom tokens (None: none)."""

    tokens: Sequence[str]
    types: Sequence[int]
    merges: Sequence[str]
    bos: int | None
    eos: int
    eot: int | None = None
    add_bos: bool = False
    eom: int | None = None


@dataclass(frozen=True, slots=True)
class Shape:
    """A llama model's sizes; rope_freq_base is how slowly positions turn q and k."""

    n_embd: int = 64
    n_ff: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_ctx: int = 2048
    rope_freq_base: float = 10000.0


def write_llama_gguf(
    path: Path,
    *,
    name: str,
    vocab: Vocab,
    shape: Shape,
    template: Template | None,
    tensors: Mapping[str, np.ndarray],
    file_type: str = "ALL_F32",
    split_max_tensors: int = 0,
    pooling_mean: bool = False,
) -> Path:
    """Write a llama-architecture GGUF of `tensors` (F32 arrays named as llama.cpp names
    them) with `vocab` and the chat `template` (None: none; named ones as a list of
    {"name", "template"}: "default" is `tokenizer.chat_template`, another NAME
    `tokenizer.chat_template.NAME`, listed in `tokenizer.chat_templates`); return `path`.

    `file_type` (a `gguf.LlamaFileType` name) is only the label its metadata gives. With
    `split_max_tensors`, it is written as a split GGUF of that many tensors a part."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType[file_type])
    w.add_context_length(shape.n_ctx)
    w.add_embedding_length(shape.n_embd)
    w.add_feed_forward_length(shape.n_ff)
    w.add_block_count(shape.n_layer)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head)
    w.add_rope_dimension_count(shape.n_embd // shape.n_head)
    w.add_rope_freq_base(shape.rope_freq_base)
    w.add_layer_norm_rms_eps(1e-5)
    if pooling_mean:
        w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(list(vocab.tokens))
    w.add_token_types(list(vocab.types))
    w.add_token_merges(list(vocab.merges))
    if vocab.bos is not None:
        w.add_bos_token_id(vocab.bos)
    w.add_eos_token_id(vocab.eos)
    if vocab.eot is not None:
        w.add_eot_token_id(vocab.eot)
    if vocab.eom is not None:
        w.add_eom_token_id(vocab.eom)
    w.add_add_bos_token(vocab.add_bos)
    if template is not None:
        w.add_chat_template(template)
    for tensor_name, array in tensors.items():
        w.add_tensor(tensor_name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
