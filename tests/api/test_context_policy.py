"""The context policy over HTTP, in process, on the tiny GGUF with n_ctx 256: a prompt longer
than the context is refused as it always was (`error`), or cut (`rolling_window`,
`truncate_middle`, or a request's `truncation`); a cut one says so in its headers, its log
line and its usage, through the OpenAI SDK (chat and Responses), Anthropic's and Ollama's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from openai import BadRequestError
from support.configs import model_toml
from support.inprocess import InProcessApp
from support.tiny_vision import build_tiny_vision_pair, mtmd_available, png_data_url

N_CTX = 256
REPLY = 4  # every request's max_tokens: a cut prompt leaves this much room for the reply
LIMIT = N_CTX - REPLY
DROPPED, POLICY = "x-localoip-truncated", "x-localoip-context-overflow"


@pytest.fixture(scope="module")
def ctx_app(apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """ctx-error (the default policy), ctx-roll and ctx-middle, on the tiny GGUF."""
    source = str(tiny_dir / "tiny.gguf")
    config = "".join(
        model_toml(name, "llama-cpp", source, n_ctx=N_CTX, threads=1, **policy)
        for name, policy in [
            ("ctx-error", {}),
            ("ctx-roll", {"context_overflow": "rolling_window"}),
            ("ctx-middle", {"context_overflow": "truncate_middle"}),
        ]
    )
    with apps.shared(config) as running:
        yield running


def chat(pad: int = 0, turns: int = 2) -> list[dict]:
    """A system message, `turns` earlier exchanges (the first `pad` bytes longer) and the
    last user turn."""
    messages = [{"role": "system", "content": "SYSTEM-KEEP"}]
    for i in range(turns):
        messages.append(
            {"role": "user", "content": f"question {i} " + "q" * (pad if i == 0 else 5)}
        )
        messages.append({"role": "assistant", "content": f"answer {i} aaaaa"})
    return [*messages, {"role": "user", "content": "LAST-QUESTION"}]


def count(app: InProcessApp, model: str, messages: list[dict]) -> int:
    """The chat's prompt tokens as sent (/tokenize counts them uncut)."""
    response = app.client().post("/tokenize", json={"model": model, "messages": messages})
    assert response.status_code == 200, response.text
    return response.json()["count"]


def sized(app: InProcessApp, tokens: int) -> list[dict]:
    """A chat of exactly `tokens` prompt tokens (the tiny vocabulary's one a byte)."""
    turns = max(2, tokens // 100)
    messages = chat(tokens - count(app, "ctx-roll", chat(0, turns)), turns)
    assert count(app, "ctx-roll", messages) == tokens
    return messages


@pytest.mark.parametrize("model", ["ctx-roll", "ctx-middle"])
def test_a_chat_at_the_limit_is_read_whole_and_one_over_is_cut_and_says_so(ctx_app, model):
    v1 = ctx_app.openai()
    for tokens, dropped in [(LIMIT, None), (LIMIT + 1, 1), (10 * N_CTX, None)]:
        raw = v1.chat.completions.with_raw_response.create(
            model=model, messages=sized(ctx_app, tokens), max_tokens=REPLY, temperature=0
        )
        reply = raw.parse()
        read = reply.usage.prompt_tokens
        if dropped is None and tokens == LIMIT:
            assert read == LIMIT and DROPPED not in raw.headers
            continue
        assert read <= LIMIT  # usage counts the tokens actually read
        assert int(raw.headers[DROPPED]) == tokens - read
        assert raw.headers[POLICY] == (
            "rolling_window" if model == "ctx-roll" else "truncate_middle"
        )
        if model == "ctx-middle":
            assert read == LIMIT  # a middle cut fills the room exactly
    assert f"model '{model}': prompt truncated by" in ctx_app.logs()


def test_under_error_the_400_is_unchanged_and_the_server_keeps_serving(ctx_app):
    v1 = ctx_app.openai()
    assert (
        v1.chat.completions.create(
            model="ctx-error", messages=sized(ctx_app, N_CTX - 1), max_tokens=REPLY
        ).usage.prompt_tokens
        == N_CTX - 1
    )
    for tokens in (N_CTX, 10 * N_CTX):
        with pytest.raises(BadRequestError) as error:
            v1.chat.completions.create(model="ctx-error", messages=sized(ctx_app, tokens))
        assert error.value.code == "context_length_exceeded" and error.value.param == "messages"
        assert error.value.body["message"] == (
            f"Requested tokens ({tokens}) exceed context window of {N_CTX}"
        )
    assert v1.chat.completions.create(model="ctx-error", messages=chat(), max_tokens=2)


def test_a_chats_truncation_field_overrides_the_models_policy(ctx_app):
    v1 = ctx_app.openai()
    long = chat(0, 20)
    raw = v1.chat.completions.with_raw_response.create(
        model="ctx-error", messages=long, max_tokens=REPLY, extra_body={"truncation": "auto"}
    )
    assert raw.headers[POLICY] == "rolling_window" and raw.parse().usage.prompt_tokens <= LIMIT
    with pytest.raises(BadRequestError) as error:
        v1.chat.completions.create(
            model="ctx-roll", messages=long, extra_body={"truncation": "disabled"}
        )
    assert error.value.code == "context_length_exceeded"
    with pytest.raises(BadRequestError) as error:
        v1.chat.completions.create(
            model="ctx-roll", messages=long, extra_body={"truncation": "yes"}
        )
    assert error.value.param == "truncation"


def test_a_streamed_chat_says_it_was_cut_in_its_headers(ctx_app):
    body = {"model": "ctx-middle", "messages": chat(0, 20), "max_tokens": REPLY, "stream": True}
    body["stream_options"] = {"include_usage": True}
    with ctx_app.client().stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers[POLICY] == "truncate_middle"
        dropped = int(response.headers[DROPPED])
        text = response.read().decode()
    assert f'"prompt_tokens":{LIMIT},' in text
    assert dropped == count(ctx_app, "ctx-middle", chat(0, 20)) - LIMIT


@pytest.mark.parametrize("policy", ["rolling_window", "truncate_middle"])
def test_the_system_message_and_last_turn_too_long_alone_is_a_clear_400(ctx_app, policy):
    model = "ctx-roll" if policy == "rolling_window" else "ctx-middle"
    messages = [{"role": "system", "content": "s" * 200}, {"role": "user", "content": "u" * 200}]
    with pytest.raises(BadRequestError) as error:
        ctx_app.openai().chat.completions.create(model=model, messages=messages, max_tokens=4)
    assert error.value.code == "context_length_exceeded"
    assert "the system messages and the last turn alone take" in error.value.body["message"]


def test_a_completion_is_cut_by_the_models_policy(ctx_app):
    raw = ctx_app.openai().completions.with_raw_response.create(
        model="ctx-roll", prompt="word " * 200, max_tokens=REPLY
    )
    assert raw.parse().usage.prompt_tokens == LIMIT
    assert raw.headers[POLICY] == "rolling_window"


def test_the_responses_truncation_is_honoured_and_echoed(ctx_app):
    v1 = ctx_app.openai()
    items = chat(0, 20)
    raw = v1.responses.with_raw_response.create(
        model="ctx-error", input=items, truncation="auto", max_output_tokens=16
    )
    response = raw.parse()
    assert response.truncation == "auto"
    assert response.usage.input_tokens <= N_CTX - 16
    assert raw.headers[POLICY] == "rolling_window"
    with pytest.raises(BadRequestError) as error:
        v1.responses.create(model="ctx-roll", input=items, truncation="disabled")
    assert error.value.code == "context_length_exceeded"
    with pytest.raises(BadRequestError) as error:
        v1.responses.create(model="ctx-roll", input=items, truncation="middle")  # type: ignore[arg-type]
    assert error.value.param == "truncation"
    body = {"model": "ctx-roll", "input": items, "stream": True, "max_output_tokens": 16}
    with ctx_app.client().stream("POST", "/v1/responses", json=body) as streamed:
        assert streamed.status_code == 200 and streamed.headers[POLICY] == "rolling_window"
        assert '"truncation":"disabled"' in streamed.read().decode()  # not sent: the default
    plain = v1.responses.create(model="ctx-roll", input="Hi", max_output_tokens=16)
    assert plain.truncation == "disabled"  # as sent: OpenAI's default when it is not


def test_anthropic_says_the_prompt_is_too_long_unless_the_model_cuts(ctx_app):
    client = ctx_app.anthropic()
    messages = [m for m in chat(0, 20) if m["role"] != "system"]
    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(model="ctx-error", max_tokens=REPLY, messages=messages)
    assert error.value.body["error"]["type"] == "invalid_request_error"
    assert error.value.body["error"]["message"].startswith("prompt is too long")
    raw = client.messages.with_raw_response.create(
        model="ctx-roll", max_tokens=REPLY, system="SYSTEM-KEEP", messages=messages
    )
    assert raw.parse().usage.input_tokens <= LIMIT and raw.headers[POLICY] == "rolling_window"


def test_ollama_drops_old_messages_as_ollama_does_even_under_error(ctx_app):
    messages = chat(0, 20)
    reply = ctx_app.ollama().chat(
        model="ctx-error", messages=messages, options={"num_predict": REPLY}
    )
    assert 0 < reply.prompt_eval_count <= LIMIT
    body = {"model": "ctx-middle", "messages": messages, "stream": False}
    body["options"] = {"num_predict": REPLY}
    response = ctx_app.client().post("/api/chat", json=body)
    assert response.headers[POLICY] == "truncate_middle"  # the model's own policy wins
    assert response.json()["prompt_eval_count"] == LIMIT


vision = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")


@pytest.fixture(scope="module")
def eyes_app(apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    model, mmproj = build_tiny_vision_pair(tmp_path_factory.mktemp("ctx-vision"))
    config = "".join(
        model_toml(
            name,
            "llama-cpp",
            str(model),
            n_ctx=N_CTX,
            threads=1,
            mmproj=str(mmproj),
            context_overflow=policy,
        )
        for name, policy in [("eyes-roll", "rolling_window"), ("eyes-middle", "truncate_middle")]
    )
    with apps.shared(config) as running:
        yield running


def picture_turn(text: str) -> dict:
    image = {"type": "image_url", "image_url": {"url": png_data_url((200, 0, 0))}}
    return {"role": "user", "content": [{"type": "text", "text": text}, image]}


@vision
@pytest.mark.parametrize("model", ["eyes-roll", "eyes-middle"])
def test_a_turn_with_an_image_is_kept_or_dropped_whole(eyes_app, model):
    old = [picture_turn("an old picture"), {"role": "assistant", "content": "seen"}]
    filler = [
        message
        for i in range(3)
        for message in (
            {"role": "user", "content": f"q{i} " + "q" * 40},
            {"role": "assistant", "content": "a" * 20},
        )
    ]
    last = picture_turn("and this one?")
    messages = [{"role": "system", "content": "SYSTEM-KEEP"}, *old, *filler, last]
    client = eyes_app.client()

    def tokens(kept: list[dict]) -> int:
        response = client.post("/tokenize", json={"model": model, "messages": kept})
        return response.json()["count"]

    assert tokens(messages) > LIMIT
    body = {"model": model, "messages": messages, "max_tokens": REPLY}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    read = response.json()["usage"]["prompt_tokens"]
    # Whole turns went, the image's with its turn; the last turn's image was read whole.
    candidates = [tokens([messages[0], *messages[1 + 2 * k :]]) for k in range(1, 5)]
    assert read in candidates and read <= LIMIT
    assert int(response.headers[DROPPED]) == tokens(messages) - read
    assert response.headers[POLICY] == "rolling_window"  # a cut that never splits an image
