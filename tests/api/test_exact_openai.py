"""Issue 13's examples through the openai SDK on the tiny model: strict JSON, tools that stream,
logprobs and limits as OpenAI defines them.

The tiny model writes printable ASCII by itself; logit_bias pushes it toward the characters a
grammar must keep out of JSON strings (newlines, quotes) or toward multi-byte characters, so
each fault shows on every seed where it is possible at all.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field
from support.chats import HI, WEATHER

# Ids in the tiny vocabulary: printable bytes from '!' (33) first, then GPT-2's other bytes.
NEWLINE, TAB, QUOTE, BACKSLASH, LT, BRACE = 198, 197, 1, 59, 27, 90
E_ACUTE_LEAD = 94 + 12 + (0xC3 - 174)  # byte 0xC3, which starts a 2-byte character
SEEDS = range(8)


class Poem(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    poem: str = Field(max_length=200)


POEM = {
    "type": "json_schema",
    "json_schema": {"name": "poem", "schema": Poem.model_json_schema(), "strict": True},
}
NOTE = {
    "type": "function",
    "function": {
        "name": "take_note",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
}
NOW = {"type": "function", "function": {"name": "now", "description": "The time"}}


def strict_json(text: str) -> object:
    return json.JSONDecoder(strict=True).decode(text)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_json_schema_reply_is_strict_json_on_every_seed(v1, seed):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "A poem, please"}],
        response_format=POEM,
        temperature=0.8,
        seed=seed,
        max_tokens=300,
        logit_bias={str(NEWLINE): 12, str(TAB): 12, str(QUOTE): 3, str(BACKSLASH): 3},
    )
    assert reply.choices[0].finish_reason == "stop"
    Poem.model_validate_json(reply.choices[0].message.content)  # pydantic's strict parser


@pytest.mark.parametrize("seed", SEEDS)
def test_a_forced_tool_call_has_strict_json_arguments_and_never_a_500(v1, seed):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "Note this"}],
        tools=[NOTE],
        tool_choice={"type": "function", "function": {"name": "take_note"}},
        temperature=1.0,
        seed=seed,
        max_tokens=200,
        logit_bias={str(NEWLINE): 12, str(QUOTE): 3},
    )
    choice = reply.choices[0]
    assert choice.finish_reason in ("tool_calls", "length")
    if choice.finish_reason == "tool_calls":
        arguments = strict_json(choice.message.tool_calls[0].function.arguments)
        jsonschema.validate(arguments, NOTE["function"]["parameters"])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_required_tool_call_among_several_is_strict_json(v1, seed):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        tools=[NOTE, WEATHER],
        tool_choice="required",
        temperature=1.0,
        seed=seed,
        max_tokens=200,
        logit_bias={str(NEWLINE): 12},
    )
    choice = reply.choices[0]
    assert not choice.message.content  # a forced reply is calls only, even when cut short
    calls = choice.message.tool_calls or []
    if choice.finish_reason == "length":
        calls = calls[:-1]  # the last may be cut short
    else:
        assert choice.finish_reason == "tool_calls" and calls
    for call in calls:  # parallel calls are allowed: each one is whole and strict
        tool = {"take_note": NOTE, "get_weather": WEATHER}[call.function.name]
        jsonschema.validate(strict_json(call.function.arguments), tool["function"]["parameters"])


def test_responses_text_format_is_strict_json_on_every_seed(v1):
    fmt = {"format": {"type": "json_schema", "name": "poem", "schema": Poem.model_json_schema()}}
    for _ in range(4):  # the Responses API has no seed; temperature 1 varies each reply
        response = v1.responses.create(
            model="tiny-chat", input="A poem", text=fmt, temperature=1.0, max_output_tokens=300
        )
        assert response.status == "completed"
        Poem.model_validate_json(response.output_text)


def test_a_pattern_with_a_quote_and_a_backslash_gives_escaped_json(v1):
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": '^[a-c"\\\\]{3,6}$'}},
        "required": ["code"],
        "additionalProperties": False,
    }
    for seed in SEEDS:
        reply = v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
            temperature=1.0,
            seed=seed,
            max_tokens=60,
            logit_bias={str(QUOTE): 8, str(BACKSLASH): 8},
        )
        jsonschema.validate(strict_json(reply.choices[0].message.content), schema)


def test_a_schema_the_grammar_cannot_enforce_is_a_400(v1):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "(?=a)b"}},
            },
        )
    assert caught.value.status_code == 400 and caught.value.param == "response_format"


def test_requests_refused_at_once_by_the_engine_leave_the_model_serving(v1):
    """The runner's refusal can arrive before the server has finished sending the call; each
    must still be a 400, and the model must keep serving (once, the reader thread died)."""
    from openai import BadRequestError

    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"pattern": "(?=a)"}}}
    for _ in range(30):
        with pytest.raises(BadRequestError):
            v1.chat.completions.create(model="tiny-chat", messages=HI, response_format=bad)
    reply = v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=3)
    assert reply.usage.completion_tokens == 3


# -- tools that stream ------------------------------------------------------------------------


def test_text_streams_token_by_token_when_tools_are_offered(v1):
    chunks = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            max_tokens=20,
            temperature=0,
            stream=True,
        )
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 10  # not one chunk at the end
    plain = v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=20, temperature=0)
    assert "".join(texts) == plain.choices[0].message.content


def test_a_streamed_call_comes_as_openai_deltas(v1):
    chunks = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=120,
            temperature=0,
            stream=True,
        )
    )
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    # Parallel calls are allowed: the tiny model goes on calling up to max_tokens.
    first, rest = deltas[0], [d for d in deltas[1:] if d.index == 0]
    assert first.index == 0 and first.id.startswith("call_")
    assert first.function.name == "get_weather"
    assert len(rest) > 3 and all(d.id is None and d.function.name is None for d in rest)
    arguments = first.function.arguments + "".join(d.function.arguments for d in rest)
    jsonschema.validate(strict_json(arguments), WEATHER["function"]["parameters"])
    assert chunks[-1].choices[0].finish_reason in ("tool_calls", "length")
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)


def test_tools_and_a_response_format_admit_a_call_or_the_schema_message(v1):
    def ask(bias: int):
        return v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            response_format=POEM,
            max_tokens=300,
            temperature=0,
            logit_bias={str(bias): 30},
        ).choices[0]

    call = ask(LT)  # '<' starts <tool_call> (parallel calls allowed: it may go on calling)
    assert call.finish_reason in ("tool_calls", "length") and call.message.content is None
    assert call.message.tool_calls[0].function.name == "get_weather"
    message = ask(BRACE)  # '{' starts the schema's object
    assert message.finish_reason == "stop" and message.message.tool_calls is None
    Poem.model_validate_json(message.message.content)


def test_a_forced_call_cut_by_max_tokens_is_a_partial_call_with_length(v1):
    for stream in (False, True):
        created = v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            max_tokens=55,
            temperature=0,
            stream=stream,
        )
        if stream:
            chunks = list(created)
            finish = chunks[-1].choices[0].finish_reason
            content = "".join(c.choices[0].delta.content or "" for c in chunks)
            deltas = [t for c in chunks for t in (c.choices[0].delta.tool_calls or [])]
            name, arguments = (
                deltas[0].function.name,
                "".join(t.function.arguments or "" for t in deltas),
            )
        else:
            finish, content = created.choices[0].finish_reason, created.choices[0].message.content
            (call,) = created.choices[0].message.tool_calls
            name, arguments = call.function.name, call.function.arguments
        assert finish == "length" and not content
        assert name == "get_weather" and arguments.startswith("{")
        assert "tool_call" not in arguments and '"name"' not in arguments


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "now"}}])
def test_a_tool_without_parameters_gets_empty_arguments(v1, choice):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        tools=[NOW],
        tool_choice=choice,
        max_tokens=60,
        temperature=1.0,
        seed=3,
    )
    assert reply.choices[0].message.tool_calls[0].function.arguments == "{}"


# -- logprobs and limits ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 2, 5])
def test_top_logprobs_are_exactly_k_and_the_sampled_token_is_its_own_entry(v1, k):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=12,
        temperature=1.0,
        seed=5,
        logprobs=True,
        top_logprobs=k,
    )
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 12
    for token in content:
        assert len(token.top_logprobs) == k
        assert [t.logprob for t in token.top_logprobs] == sorted(
            (t.logprob for t in token.top_logprobs), reverse=True
        )
        if k and token.token not in {t.token for t in token.top_logprobs}:
            assert token.logprob <= token.top_logprobs[-1].logprob


def test_a_token_that_ends_inside_a_character_has_its_bytes(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=6,
        temperature=0,
        logprobs=True,
        top_logprobs=1,
        logit_bias={str(E_ACUTE_LEAD): 40},
    )
    content = reply.choices[0].logprobs.content
    assert content[0].bytes == [0xC3] and content[0].token == "\\xc3"
    assert reply.usage.completion_tokens <= 6
    reply.choices[0].message.content.encode("utf-8")  # valid text


BIASED = {"logit_bias": {str(E_ACUTE_LEAD): 40}, "temperature": 0}


@pytest.mark.parametrize("limit", [1, 3, 4])
def test_completion_tokens_never_exceed_max_tokens(v1, limit):
    # every token is the lead byte of a 2-byte character, which llama-cpp-python decodes past
    reply = v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=limit, **BIASED)
    assert reply.usage.completion_tokens == limit and reply.choices[0].finish_reason == "length"
    streamed = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            max_completion_tokens=limit,
            stream=True,
            stream_options={"include_usage": True},
            **BIASED,
        )
    )
    assert streamed[-1].usage.completion_tokens == limit
    two = v1.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=limit, n=2, **BIASED
    )
    assert two.usage.completion_tokens == 2 * limit
    completion = v1.completions.create(model="tiny-chat", prompt="hi", max_tokens=limit, **BIASED)
    assert completion.usage.completion_tokens == limit
    response = v1.responses.create(
        model="tiny-chat", input="hi", max_output_tokens=limit, temperature=0
    )
    assert response.usage.output_tokens <= limit


def test_a_stored_streamed_call_is_kept_whole(v1):
    chunks = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=150,
            temperature=0,
            stream=True,
            store=True,
        )
    )
    deltas = [t for c in chunks for t in (c.choices[0].delta.tool_calls or [])]
    kept = v1.chat.completions.retrieve(chunks[0].id).choices[0].message.tool_calls
    streamed = [[d for d in deltas if d.index == i] for i in range(len(kept))]
    assert [(c.id, c.function.name) for c in kept] == [(s[0].id, "get_weather") for s in streamed]
    for call, pieces in zip(kept, streamed, strict=True):
        assert call.function.arguments == "".join(d.function.arguments for d in pieces)


def test_an_echo_with_logprobs_has_the_prompts_own_logprobs_first(v1):
    """The prompt's tokens are scored before the generated ones, whole and streamed."""
    asked = dict(model="tiny-chat", prompt="abc", max_tokens=4, temperature=0, logprobs=2)
    plain = v1.completions.create(model="tiny-chat", prompt="abc", max_tokens=4, temperature=0)
    whole = v1.completions.create(echo=True, **asked).choices[0]
    assert whole.text == "abc" + plain.choices[0].text
    lp = whole.logprobs
    # Nothing predicts the first prompt token.
    assert lp.tokens[:3] == ["a", "b", "c"] and lp.token_logprobs[0] is None
    assert all(isinstance(p, float) for p in lp.token_logprobs[1:])
    assert len(lp.tokens) == 3 + 4 and all(len(top) == 2 for top in lp.top_logprobs[1:])
    chunks = list(v1.completions.create(echo=True, stream=True, **asked))
    streamed = [c.choices[0].logprobs for c in chunks if c.choices[0].logprobs]
    assert [t for s in streamed for t in s.tokens] == lp.tokens
    assert [p for s in streamed for p in s.token_logprobs] == lp.token_logprobs
