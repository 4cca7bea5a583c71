"""Every token's text, whatever its length: the one place a token becomes bytes.

llama-cpp-python 0.3.36's `LlamaModel.detokenize` gives each token a 32-byte buffer and
silently returns b"" for a longer piece; real vocabularies hold longer ones (Llama 3's and
Qwen's runs of spaces, `=` and `-`). Here `llama_token_to_piece` is called on our side with a
buffer that grows when it reports a negative (needed) length. `Pieces` is also installed as
the Llama's tokenizer (`of`), so llama-cpp-python's own paths (`Llama.detokenize`,
`create_completion`'s text and logprobs, chat handlers' bos/eos) read whole pieces too.
"""

from __future__ import annotations

import ctypes

import llama_cpp
from llama_cpp import Llama
from llama_cpp import _internals as internals
from llama_cpp.llama_tokenizer import BaseLlamaTokenizer

_FIRST_TRY = 64  # bytes; a longer piece costs a second call


def token_piece(vocab: llama_cpp.llama_vocab_p, token: int, special: bool) -> bytes:
    """One token's bytes (with `special`, a control token's text too; without, b"" for it)."""
    size = _FIRST_TRY
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, special)
        if n >= 0:
            return buffer.raw[:n]
        size = -n


class Pieces(BaseLlamaTokenizer):
    """A model's token pieces, each read once and kept (a vocabulary's pieces never change);
    as a llama-cpp-python tokenizer, it tokenizes as the model does and detokenizes whole
    pieces."""

    def __init__(self, model: internals.LlamaModel) -> None:
        self._model = model
        self._kept: tuple[dict[int, bytes], dict[int, bytes]] = ({}, {})

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of `token`; with `special`, control tokens' text is kept."""
        kept = self._kept[special]
        piece = kept.get(token)
        if piece is None:
            piece = kept[token] = token_piece(self._model.vocab, token, special)
        return piece

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        """The model's own tokens of `text` (llama-cpp-python's, whose buffer grows)."""
        return self._model.tokenize(text, add_bos=add_bos, special=special)

    def detokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        """The tokens' bytes. As llama-cpp-python does, one leading space is dropped after a
        first BOS token (Llama 1's tokenizer added it); `prev_tokens` changes nothing."""
        text = b"".join(self.piece(t, special) for t in tokens)
        if tokens and tokens[0] == self._model.token_bos() and text.startswith(b" "):
            return text[1:]
        return text


def of(llm: Llama) -> Pieces:
    """`llm`'s Pieces, installed as its tokenizer the first time (Llama's documented override,
    set after loading because it needs the loaded vocabulary)."""
    tokenizer = llm.tokenizer_
    if not isinstance(tokenizer, Pieces):
        tokenizer = llm.tokenizer_ = Pieces(llm._model)
    return tokenizer
