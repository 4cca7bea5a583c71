"""`n_ctx = "auto"` and a quantized KV cache, in process: the context chosen at load is what
/v1/models, the repository index (and so `localoip ps`), the Models tab and the log say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from localoip.app.cli.model_commands import ps_rows
from support.configs import model_toml
from support.inprocess import InProcessApp
from support.tiny_models import build_tiny_gguf

TRAINED = 2048  # the tiny GGUF's context_length


@pytest.fixture(scope="module")
def auto_app(apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """`wide` sizes its context itself, its cache in q8_0; `fixed` keeps its number."""
    gguf = build_tiny_gguf(tmp_path_factory.mktemp("auto") / "tiny.gguf", n_embd=128)
    config = model_toml(
        "wide", "llama-cpp", str(gguf), n_ctx="auto", kv_cache_type="q8_0", threads=1
    ) + model_toml("fixed", "llama-cpp", str(gguf), n_ctx=512, threads=1)
    with apps.shared(config) as running:
        yield running


def test_the_models_list_gives_the_context_chosen_and_the_trained_one(auto_app):
    cards = {m["id"]: m for m in auto_app.client().get("/v1/models").json()["data"]}
    wide, fixed = cards["wide"], cards["fixed"]
    assert wide["state"] == "READY"
    assert (wide["context_length"], wide["max_context_length"]) == (TRAINED, TRAINED)
    assert (fixed["context_length"], fixed["max_context_length"]) == (512, TRAINED)
    assert wide["context_sized"].startswith("auto: the trained context, whose KV cache")
    assert fixed["context_sized"] is None


def test_ps_shows_the_context_in_use_beside_the_trained_one(auto_app):
    index = auto_app.client().post("/v2/repository/index", json={}).json()
    header, *rows = ps_rows(index)
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_name["wide"]["CONTEXT_LENGTH"] == str(TRAINED)
    assert by_name["fixed"]["CONTEXT_LENGTH"] == "512"
    assert by_name["wide"]["MAX_CONTEXT_LENGTH"] == str(TRAINED)
    assert by_name["wide"]["CONTEXT_SIZED"].startswith(
        "auto: the trained context, whose KV cache for 4 sequences"
    )
    assert by_name["fixed"]["CONTEXT_SIZED"] == "-"  # a number set is its own reason


def test_the_models_tab_shows_the_context_of_the_trained(auto_app):
    page = auto_app.client().get("/ui/models")
    rows = {row.split('"')[0]: row for row in page.text.split('data-model="')[1:]}
    assert f"context {TRAINED} of {TRAINED} tokens" in rows["wide"]
    assert f"context 512 of {TRAINED} tokens" in rows["fixed"]


def test_the_log_says_what_auto_chose_and_why(auto_app):
    lines = [line for line in auto_app.logs().splitlines() if "n_ctx 2048 of the trained" in line]
    assert len(lines) == 1, auto_app.logs()
    assert "auto: the trained context, whose KV cache for 4 sequences" in lines[0]
    assert "a q8_0 KV cache of" in lines[0]


def test_a_chat_reads_a_long_prompt_in_the_quantized_cache(auto_app):
    words = " ".join(f"word{i}" for i in range(150))  # ~1150 tokens: past 512
    body = {
        "model": "wide",
        "messages": [{"role": "user", "content": words}],
        "max_tokens": 4,
        "temperature": 0,
    }
    reply = auto_app.client().post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["prompt_tokens"] > 512
    refused = auto_app.client().post("/v1/chat/completions", json={**body, "model": "fixed"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"


def test_before_load_an_auto_context_is_not_known(apps, tmp_path: Path):
    config = model_toml("later", "llama-cpp", str(tmp_path / "absent.gguf"), n_ctx="auto")
    with apps.shared(config) as running:
        (card,) = running.client().get("/v1/models").json()["data"]
        assert card["context_length"] is None and card["max_model_len"] is None
