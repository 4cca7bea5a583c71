"""A GGUF's named chat templates, through the server: Command R7B's GGUF holds its default
template and a `tool_use` one; as llama-server does, a chat that offers tools renders with the
`tool_use` template and its call comes back as `tool_calls`, any other chat with the default,
and a `chat_format` set in models.toml wins over both."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from localoip.runtimes.llamacpp.template import ChatTemplate
from support.chats import WEATHER
from support.configs import model_toml, scripted_chats
from support.families import COMMAND_R7B
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, TEMPLATES
from support.inprocess import InProcessApp
from support.scripted import Turn, build_scripted_gguf

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
DEFAULT = (TEMPLATES / "CohereForAI-c4ai-command-r7b-12-2024-default.jinja").read_text()
TOOL_USE = COMMAND_R7B.template
BOS, EOS = "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"


@pytest.fixture(scope="module")
def app(apps, tmp_path_factory) -> Iterator[InProcessApp]:
    """A scripted Command R7B with both templates: it answers after the default one's prompt
    (which opens `<|START_RESPONSE|>`), and calls get_weather after a prompt that holds
    `<|START_TOOL_RESULT|>` (only the tool_use template's tool instructions do). Served
    twice: as the GGUF says, and with `chat_format = "chat_template.default"`."""
    folder = tmp_path_factory.mktemp("tool-use")
    build_scripted_gguf(
        folder / "command-r7b.gguf",
        family=COMMAND_R7B,
        script=[
            f"{ANSWER}<|END_RESPONSE|>",
            Turn(COMMAND_R7B.calling, cue="<|START_TOOL_RESULT|>"),
        ],
        chat_template=[
            {"name": "default", "template": DEFAULT},
            {"name": "tool_use", "template": TOOL_USE},
        ],
    )
    config = scripted_chats(folder, ["command-r7b"]) + model_toml(
        "command-r7b-default",
        "llama-cpp",
        f"{folder}/command-r7b.gguf",
        n_ctx=8192,
        threads=1,
        prompt_chunk=256,
        chat_format="chat_template.default",
    )
    with apps.shared(config) as running:
        yield running


def prompt(http: httpx.Client, model: str, **body: object) -> str:
    """The prompt text a chat of `body` renders to, by /tokenize and /detokenize."""
    tokens = http.post("/tokenize", json={"model": model, "messages": ASK, **body})
    assert tokens.status_code == 200, tokens.text
    text = http.post("/detokenize", json={"model": model, "tokens": tokens.json()["tokens"]})
    assert text.status_code == 200, text.text
    return text.json()["prompt"]


def test_a_chat_that_offers_tools_renders_the_tool_use_template(app):
    with app.client() as http:
        got = prompt(http, "command-r7b", tools=[WEATHER])
    assert got == ChatTemplate(TOOL_USE, BOS, EOS).render(ASK, [WEATHER])
    assert "## Available Tools" in got and '"name": "get_weather"' in got


def test_a_chat_without_tools_renders_the_default_template(app):
    expected = ChatTemplate(DEFAULT, BOS, EOS).render(ASK)
    assert expected.endswith("<|CHATBOT_TOKEN|><|START_RESPONSE|>")
    with app.client() as http:
        assert prompt(http, "command-r7b") == expected


def test_the_tool_use_templates_call_comes_back_as_tool_calls(app):
    reply = app.openai().chat.completions.create(
        model="command-r7b", messages=ASK, tools=[WEATHER], temperature=0
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", ARGUMENTS)
    assert choice.message.model_extra["reasoning_content"] == CALL_REASONING
    assert not choice.message.content


def test_the_default_templates_answer_comes_back_as_content(app):
    v1 = app.openai()
    reply = v1.chat.completions.create(model="command-r7b", messages=ASK, temperature=0)
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == (ANSWER, "stop")
    # tool_choice "none" offers nothing: the default template, the same prompt and answer
    unoffered = v1.chat.completions.create(
        model="command-r7b", messages=ASK, tools=[WEATHER], tool_choice="none", temperature=0
    )
    assert unoffered.choices[0].message.content == ANSWER
    assert unoffered.usage.prompt_tokens == reply.usage.prompt_tokens


def test_a_chat_format_in_models_toml_wins_over_the_tool_use_template(app):
    with app.client() as http:
        got = prompt(http, "command-r7b-default", tools=[WEATHER])
    assert "## Available Tools" not in got  # the default template, tools offered beside it
    assert "get_weather" in got and got.startswith(BOS + "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>")
