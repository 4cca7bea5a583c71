"""Token pieces read on our side of llama-cpp-python (runtimes/llamacpp/pieces.py): equal to
its own for short tokens, whole for a token longer than its 32-byte buffer."""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp
import pytest
from localoip.runtimes.llamacpp import pieces
from support.tiny_models import build_tiny_gguf

LONG = "=" * 64


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llama_cpp.Llama]:
    path = build_tiny_gguf(tmp_path_factory.mktemp("pieces") / "long.gguf", long_runs=(LONG,))
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.mark.parametrize("special", [False, True])
def test_short_pieces_equal_llama_cpp_pythons_and_the_long_one_is_whole(llm, special):
    own = pieces.Pieces(llm._model)
    [long] = llm.tokenize(LONG.encode(), add_bos=False)
    for token in set(range(llm.n_vocab())) - {long}:
        assert own.piece(token, special) == llm._model.detokenize([token], special=special)
    assert llm._model.detokenize([long], special=special) == b""  # 0.3.36 drops it
    assert own.piece(long, special) == LONG.encode()


def test_installed_as_the_tokenizer_llama_detokenize_keeps_long_tokens(llm):
    [long] = llm.tokenize(LONG.encode(), add_bos=False)
    assert pieces.of(llm) is pieces.of(llm)
    assert llm.detokenize([long, long]) == LONG.encode() * 2
    assert llm.detokenize([llm.token_bos()], special=True) == b"<|endoftext|>"
