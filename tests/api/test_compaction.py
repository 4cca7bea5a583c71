"""Compaction end to end: POST /responses/compact through the official SDK, compaction items and
compaction_trigger in later responses, and every bad input, on the tiny chat model.

The tiny model's byte-level tokenizer makes a token of about every byte, so the assistant turn
below is some 700 tokens, far more than the 256 a summary may take.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet
from localoip.app.api.openai.responses.inputs import since_compaction
from localoip.runtimes.wire.openai.responses.items import (
    CompactionItem,
    FunctionCallItem,
    message_item,
    user_message,
)
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.responses import (
    CompactedResponse,
    Response,
    ResponseCompactionItem,
    ResponseStreamEvent,
    ResponseUsage,
)
from pydantic import TypeAdapter
from support.inprocess import InProcessApp
from support.openai_spec import SPEC, conform

EVENTS = TypeAdapter(ResponseStreamEvent)
LONG_ANSWER = "Day one: the fjord, the opera house and the fortress. " * 13
HISTORY = [
    {"role": "user", "content": "Plan a trip to Oslo."},
    {"role": "assistant", "content": LONG_ANSWER},
    {"role": "user", "content": "Make it cheaper."},
]
SHORT = {"max_output_tokens": 4, "temperature": 0}


@pytest.fixture(scope="module")
def client(store_app: InProcessApp) -> OpenAI:
    return store_app.openai()


@pytest.fixture
def http(store_app: InProcessApp) -> Iterator[httpx.Client]:
    with store_app.client("/v1", timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def compacted(client: OpenAI) -> CompactedResponse:
    """HISTORY compacted, as the SDK reads it."""
    return client.responses.compact(model="tiny-chat", input=HISTORY)


def items_of(compacted: CompactedResponse) -> list[dict]:
    """A compaction's output, ready to send back as input."""
    return compacted.to_dict(warnings=False)["output"]


def test_the_sdk_reads_a_compaction_that_keeps_user_messages_and_ends_in_a_sealed_item(
    client, compacted
):
    assert isinstance(compacted, CompactedResponse)
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    *kept, sealed = compacted.output
    # Strictly, item by item: the SDK's output union has no user message, though its own
    # docstring (and the spec's ItemField) keep them; the spec test below checks those.
    ResponseCompactionItem.model_validate(sealed.to_dict())
    ResponseUsage.model_validate(compacted.usage.to_dict())
    assert sealed.type == "compaction" and sealed.id.startswith("cmp_")
    assert [m.role for m in kept] == ["user", "user"]
    assert [m.content[0].text for m in kept] == ["Plan a trip to Oslo.", "Make it cheaper."]
    assert "fjord" not in sealed.encrypted_content  # opaque, not just signed
    assert sealed.encrypted_content.startswith("gAAAAA")  # a Fernet token: version byte 0x80
    usage = compacted.usage
    assert usage.input_tokens > len(LONG_ANSWER) // 2 and 0 < usage.output_tokens <= 256
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


@pytest.mark.skipif(not SPEC.is_file(), reason="the OpenAI spec lives in ../shared/specs")
def test_a_compaction_matches_the_published_schema(compacted):
    conform("CompactResource", compacted.to_dict(warnings=False))


def test_a_follow_up_from_the_compaction_sends_fewer_tokens_than_the_whole_history(
    client, compacted
):
    question = {"role": "user", "content": "And on day two?"}
    whole = client.responses.create(model="tiny-chat", input=[*HISTORY, question], **SHORT)
    follow = client.responses.create(
        model="tiny-chat", input=[*items_of(compacted), question], **SHORT
    )
    assert follow.usage.input_tokens < whole.usage.input_tokens
    # ... and the summary is in it: more than the user messages alone.
    users_only = [HISTORY[0], HISTORY[2], question]
    alone = client.responses.input_tokens.count(model="tiny-chat", input=users_only)
    assert follow.usage.input_tokens > alone.input_tokens
    kinds = [i.type for i in client.responses.input_items.list(follow.id, order="asc")]
    assert kinds == ["message", "message", "compaction", "message"]


def test_a_stored_conversation_compacts_by_previous_response_id(client):
    first = client.responses.create(model="tiny-chat", input=HISTORY, **SHORT)
    second = client.responses.create(
        model="tiny-chat", previous_response_id=first.id, input="Day two?", **SHORT
    )
    compacted = client.responses.compact(model="tiny-chat", previous_response_id=second.id)
    *kept, sealed = compacted.output
    texts = [m.content[0].text for m in kept]
    assert texts == ["Plan a trip to Oslo.", "Make it cheaper.", "Day two?"]
    assert sealed.type == "compaction"
    # Input after the stored conversation joins it.
    more = client.responses.compact(
        model="tiny-chat", previous_response_id=second.id, input="Day three?"
    )
    assert [m.content[0].text for m in more.output[:-1]] == [*texts, "Day three?"]


def test_a_compaction_trigger_makes_the_response_a_compaction_that_later_turns_continue(
    client,
):
    first = client.responses.create(model="tiny-chat", input=HISTORY, **SHORT)
    turn = client.responses.create(
        model="tiny-chat", previous_response_id=first.id, input=[{"type": "compaction_trigger"}]
    )
    Response.model_validate(turn.to_dict())
    assert turn.status == "completed" and [i.type for i in turn.output] == ["compaction"]
    assert 0 < turn.usage.output_tokens <= 256
    stored = [i.type for i in client.responses.input_items.list(turn.id, order="asc")]
    assert stored == ["message", "message", "message", "message"]  # no trigger kept
    after = client.responses.create(
        model="tiny-chat", previous_response_id=turn.id, input="Go on.", **SHORT
    )
    without = client.responses.create(
        model="tiny-chat", previous_response_id=first.id, input="Go on.", **SHORT
    )
    assert after.usage.input_tokens < without.usage.input_tokens


def test_a_streamed_compaction_trigger_sends_compaction_events_and_no_summary(client):
    events = list(
        client.responses.create(
            model="tiny-chat", input=[*HISTORY, {"type": "compaction_trigger"}], stream=True
        )
    )
    for event in events:
        EVENTS.validate_python(event.to_dict())
    kinds = [e.type for e in events]
    compacting = kinds.count("response.compaction.compacting")
    assert compacting > 0
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.compaction.compacting"] * compacting,
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    item = final.output[0]
    assert events[-2].item.encrypted_content == item.encrypted_content
    assert events[2].item.id == events[3].item_id == item.id
    # Asked for again once finished, the same events come back.
    with client.responses.retrieve(final.id, stream=True) as replayed:
        again = [e.type for e in replayed]
    assert again[:3] == kinds[:3] and again[-2:] == kinds[-2:]


def test_the_seldon_and_kserve_prefixes_compact_too(store_app):
    for base in ("/openai/v1", "/v2/models/tiny-chat/infer"):
        other = store_app.openai(base)
        compacted = other.responses.compact(model="tiny-chat", input="Hello")
        assert compacted.output[-1].type == "compaction"


def test_the_seldon_sub_route_refuses_another_model(store_app):
    seldon = store_app.openai("/v2/models/tiny-chat/infer")
    with pytest.raises(BadRequestError) as mismatch:
        seldon.responses.compact(model="other", input="Hi")
    assert mismatch.value.code == "model_mismatch" and mismatch.value.param == "model"


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(NotFoundError) as missing:
        client.responses.compact(model="no-such-model", input="Hi")
    assert missing.value.code == "model_not_found"


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def _foreign(summary: str) -> str:
    """A well-made token under some other key: another server's, or a forger's."""
    return Fernet(Fernet.generate_key()).encrypt(b'{"summary": "%s"}' % summary.encode()).decode()


@pytest.mark.parametrize("path", ["/responses", "/responses/compact", "/responses/input_tokens"])
@pytest.mark.parametrize("forge", [_tampered, lambda t: _foreign("all is well"), lambda t: "x"])
def test_a_tampered_or_foreign_compaction_item_is_a_400_naming_it(http, compacted, path, forge):
    sealed = compacted.output[-1]
    bad = {
        "type": "compaction",
        "id": sealed.id,
        "encrypted_content": forge(sealed.encrypted_content),
    }
    body = {"model": "tiny-chat", "input": [HISTORY[0], bad, HISTORY[2]], **SHORT}
    if path != "/responses":
        body = {k: v for k, v in body.items() if k in ("model", "input")}
    reply = http.post(path, json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "input[1].encrypted_content"
    assert error["code"] == "invalid_encrypted_content"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"instructions": "Be brief."}, "input"),
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": [{"type": "compaction"}]}, "input[0].encrypted_content"),
        (
            {"input": [{"type": "compaction", "encrypted_content": 7}]},
            "input[0].encrypted_content",
        ),
        (
            {"input": [{"type": "compaction_trigger"}, {"role": "user", "content": "x"}]},
            "input[0].type",
        ),
        ({"input": [{"type": "web_search_call"}]}, "input[0].type"),
        ({"previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"input": "x", "previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"input": "x", "model": None}, "model"),
        ({"input": "x", "model": 5}, "model"),
    ],
)
def test_bad_compact_requests_are_400s_naming_the_param(http, body, param):
    reply = http.post("/responses/compact", json={"model": "tiny-chat", **body})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_a_trigger_that_is_not_last_is_a_400_on_create_too(http):
    body = {"model": "tiny-chat", "input": [{"type": "compaction_trigger"}, HISTORY[0]], **SHORT}
    reply = http.post("/responses", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].type"


def test_an_empty_or_non_json_body_is_a_400(http):
    for content in (b"", b"{", b"[]"):
        reply = http.post("/responses/compact", content=content)
        assert reply.status_code == 400, reply.text


def test_the_key_is_kept_beside_the_store_readable_by_its_owner_only(store_app, compacted):
    key = store_app.folder / "store.key"
    assert key.is_file() and oct(os.stat(key).st_mode & 0o777) == "0o600"


def test_a_compaction_stands_for_all_before_it_but_the_users_messages():
    items = [
        user_message("one"),
        message_item("m1", "assistant", []),
        FunctionCallItem(id="f1", call_id="c", name="f", arguments="{}"),
        message_item("s1", "system", []),
        user_message("two"),
        CompactionItem(id="cmp_1", encrypted_content="t"),
        message_item("m2", "assistant", []),
    ]
    kept = [i.id for i in since_compaction(items)]
    assert kept == [items[0].id, items[4].id, "cmp_1", "m2"]
    assert since_compaction(items[:3]) == items[:3]  # no compaction: everything
