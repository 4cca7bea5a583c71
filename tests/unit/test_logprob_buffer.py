"""The score buffer llama-cpp-python needs for logprobs on its own chat path (legacy.py): it
must not ask for n_ctx x n_vocab floats up front, which is 32 GiB for gemma3 at a 32,768-token
context and more than this machine has, and llama-cpp-python must still write into it."""

from __future__ import annotations

import sys
from pathlib import Path

import llama_cpp
import numpy as np
import pytest
from localoip.runtimes.llamacpp.legacy import logits_for, unreserved_zeros
from support.tiny_models import build_tiny_gguf


@pytest.mark.skipif(sys.platform != "linux", reason="the mapping that reserves nothing is Linux's")
def test_a_buffer_larger_than_the_machine_is_made_and_holds_what_is_written():
    """32 GiB: numpy's zeros raises MemoryError for it on a 24 GiB machine."""
    rows, columns = 32768, 262144  # gemma3's vocabulary at a 32,768-token context
    scores = unreserved_zeros(rows, columns)
    assert scores.shape == (rows, columns) and scores.dtype == np.single
    scores[7, :] = 1.5
    assert scores[7].sum() == 1.5 * columns
    assert scores[8].sum() == 0.0 and scores[rows - 1, columns - 1] == 0.0


def test_llama_cpp_python_reports_logprobs_into_it(tmp_path: Path):
    """A completion with logprobs under logits_for gives a finite log-probability per token,
    which llama-cpp-python reads from the rows it wrote; the model's buffer is put back after."""
    llm = llama_cpp.Llama(
        str(build_tiny_gguf(tmp_path / "tiny.gguf")), n_ctx=256, n_threads=1, verbose=False
    )
    before = llm.scores
    with logits_for(llm, 2):
        assert llm.scores.shape == (llm.n_ctx(), llm.n_vocab())
        answer = llm.create_completion("Tell me about the sea", max_tokens=6, logprobs=2)
    logprobs = answer["choices"][0]["logprobs"]
    assert len(logprobs["token_logprobs"]) == len(logprobs["tokens"]) > 0
    assert all(np.isfinite(v) and v <= 0 for v in logprobs["token_logprobs"])
    assert all(len(top) == 2 for top in logprobs["top_logprobs"])
    assert llm.scores is before
