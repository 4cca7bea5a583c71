"""Stored chat completions end to end, through the official SDK, on the tiny chat model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionStoreMessage
from support.configs import tiny_chat
from support.inprocess import InProcessApp, running
from support.openai_spec import SPEC, conform

HI = [{"role": "user", "content": "hi"}]
SHORT = {"max_tokens": 4, "temperature": 0}


def config_for(tiny_dir: Path, folder: Path, store: Path) -> Path:
    config = folder / "models.toml"
    config.write_text(f'[server]\nstore_path = "{store}"\n\n' + tiny_chat(tiny_dir, n_ctx=2048))
    return config


@pytest.fixture(scope="module")
def client(store_app: InProcessApp) -> OpenAI:
    return store_app.openai()


@pytest.fixture
def http(store_app: InProcessApp) -> Iterator[httpx.Client]:
    with store_app.client("/v1", timeout=60) as c:
        yield c


def stored(client: OpenAI, **body) -> ChatCompletion:
    return client.chat.completions.create(model="tiny-chat", store=True, **{**SHORT, **body})


def test_a_stored_completion_comes_back_with_its_metadata(client, http):
    made = stored(client, messages=HI, metadata={"team": "a"})
    found = client.chat.completions.retrieve(made.id)
    assert found.choices[0].message.content == made.choices[0].message.content
    assert found.usage == made.usage and found.metadata == {"team": "a"}
    ChatCompletion.model_validate(http.get(f"/chat/completions/{made.id}").json())
    assert made.id in [c.id for c in client.chat.completions.list()]


@pytest.mark.skipif(not SPEC.is_file(), reason="the OpenAI spec lives in ../shared/specs")
def test_empty_lists_have_string_ids_as_the_published_schema_requires(client, http):
    empty = http.get("/chat/completions", params={"model": "nobody"}).json()
    assert empty == {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False}
    conform("ChatCompletionList", empty)
    made = stored(client, messages=HI)
    full = http.get(f"/chat/completions/{made.id}/messages").json()
    conform("ChatCompletionMessageList", full)
    after = full["last_id"]
    past_the_end = http.get(f"/chat/completions/{made.id}/messages", params={"after": after})
    assert past_the_end.json()["data"] == [] and past_the_end.json()["first_id"] == ""
    conform("ChatCompletionMessageList", past_the_end.json())
    conform("ChatCompletionList", http.get("/chat/completions").json())


def test_a_completion_without_store_is_not_kept(client):
    made = client.chat.completions.create(model="tiny-chat", messages=HI, **SHORT)
    with pytest.raises(NotFoundError):
        client.chat.completions.retrieve(made.id)


def test_a_stored_stream_keeps_the_whole_reply_and_its_usage(client):
    chunks = list(stored(client, messages=HI, stream=True, max_tokens=6))
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    found = client.chat.completions.retrieve(chunks[0].id)
    assert found.object == "chat.completion"
    assert found.choices[0].message.content == text
    assert found.choices[0].finish_reason == "length"
    assert found.usage.completion_tokens == 6


def test_a_stored_stream_that_asks_for_usage_still_gets_it(client):
    chunks = list(stored(client, messages=HI, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert client.chat.completions.retrieve(chunks[0].id).usage == chunks[-1].usage


def test_the_request_messages_are_listed_with_ids(client, http):
    messages = [
        {"role": "system", "content": "Be kind."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "two "}, {"type": "text", "text": "parts"}],
        },
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ]
    made = stored(client, messages=messages)
    listed = client.chat.completions.messages.list(made.id)
    assert [m.role for m in listed.data] == ["system", "user", "assistant", "user"]
    assert listed.data[1].content == "two parts"
    assert [p.text for p in listed.data[1].content_parts] == ["two ", "parts"]
    assert listed.data[0].content_parts is None
    assert len({m.id for m in listed.data}) == 4
    for message in http.get(f"/chat/completions/{made.id}/messages").json()["data"]:
        # The SDK's type says "assistant" for every role; OpenAI keeps each message's own.
        ChatCompletionStoreMessage.model_validate(message | {"role": "assistant"})
    page = client.chat.completions.messages.list(made.id, limit=2, order="desc")
    assert [m.content for m in page.data] == ["again", "ok"] and page.has_more
    rest = client.chat.completions.messages.list(made.id, after=page.data[-1].id, order="desc")
    assert [m.role for m in rest.data] == ["user", "system"] and not rest.has_more


def test_the_list_filters_by_model_and_metadata_and_pages_in_order(client):
    ids = [
        stored(client, messages=HI, metadata={"batch": "paging", "i": str(i)}).id for i in range(3)
    ]
    by_batch = client.chat.completions.list(metadata={"batch": "paging"})
    assert [c.id for c in by_batch] == ids
    assert [c.id for c in client.chat.completions.list(metadata={"batch": "paging", "i": "1"})] == [
        ids[1]
    ]
    newest = client.chat.completions.list(metadata={"batch": "paging"}, order="desc", limit=2)
    assert [c.id for c in newest.data] == [ids[2], ids[1]] and newest.has_more
    # The SDK follows `after` from page to page.
    paged = client.chat.completions.list(metadata={"batch": "paging"}, limit=1)
    assert [c.id for c in paged] == ids
    assert client.chat.completions.list(model="tiny-chat", metadata={"batch": "paging"}).data
    assert not client.chat.completions.list(model="other", metadata={"batch": "paging"}).data


def test_update_changes_only_the_metadata(client, http):
    made = stored(client, messages=HI, metadata={"a": "1"})
    updated = client.chat.completions.update(made.id, metadata={"b": "2"})
    assert updated.metadata == {"b": "2"}
    assert updated.choices[0].message.content == made.choices[0].message.content
    assert client.chat.completions.retrieve(made.id).metadata == {"b": "2"}
    refused = http.post(f"/chat/completions/{made.id}", json={"metadata": {}, "model": "x"})
    assert refused.status_code == 400


def test_delete_removes_the_completion_and_its_messages(client, http):
    made = stored(client, messages=HI)
    deleted = client.chat.completions.delete(made.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        made.id,
        True,
        "chat.completion.deleted",
    )
    with pytest.raises(NotFoundError):
        client.chat.completions.retrieve(made.id)
    assert http.get(f"/chat/completions/{made.id}/messages").status_code == 404
    assert http.delete(f"/chat/completions/{made.id}").status_code == 404


def test_the_seldon_sub_route_lists_its_own_models_completions(store_app, client):
    made = stored(client, messages=HI, metadata={"route": "seldon"})
    seldon = store_app.openai("/v2/models/tiny-chat/infer")
    assert [c.id for c in seldon.chat.completions.list(metadata={"route": "seldon"})] == [made.id]
    with pytest.raises(BadRequestError) as mismatch:
        seldon.chat.completions.list(model="other")
    assert mismatch.value.code == "model_mismatch"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/chat/completions/chatcmpl-unknown", None),
        ("POST", "/chat/completions/chatcmpl-unknown", {"metadata": {}}),
        ("DELETE", "/chat/completions/chatcmpl-unknown", None),
        ("GET", "/chat/completions/chatcmpl-unknown/messages", None),
    ],
)
def test_unknown_completion_ids_are_404s_in_openais_shape(http, method, path, body):
    reply = http.request(method, path, json=body)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("order=newest", "order"),
        ("after=chatcmpl-unknown", "after"),
    ],
)
def test_bad_list_parameters_are_400s(http, query, param):
    reply = http.get(f"/chat/completions?{query}")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({"k": 1}, "metadata[...]"),
        ({f"k{i}": "v" for i in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"k": "v" * 513}, "metadata[...]"),
        (["k", "v"], "metadata"),
    ],
)
def test_metadata_must_be_at_most_16_short_string_pairs(http, metadata, param):
    body = {"model": "tiny-chat", "messages": HI, "store": True, "metadata": metadata, **SHORT}
    reply = http.post("/chat/completions", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param


def test_completions_responses_and_compaction_items_survive_a_restart(tiny_dir, tmp_path):
    config = config_for(tiny_dir, tmp_path, tmp_path / "kept.db")
    with running(config) as first:
        client = first.openai()
        made = stored(client, messages=HI, metadata={"kept": "yes"})
        response = client.responses.create(model="tiny-chat", input="Hi", max_output_tokens=4)
        compacted = client.responses.compact(model="tiny-chat", input="Hi")
        items = compacted.to_dict(warnings=False)["output"]
    with running(config) as second:
        client = second.openai()
        assert [c.id for c in client.chat.completions.list(metadata={"kept": "yes"})] == [made.id]
        assert client.chat.completions.retrieve(made.id).choices == made.choices
        assert client.responses.retrieve(response.id).output_text == response.output_text
        continued = client.responses.create(
            model="tiny-chat", input="More", previous_response_id=response.id, max_output_tokens=4
        )
        assert continued.previous_response_id == response.id
        # The key that sealed the compaction is kept beside the store, so it still opens.
        assert (tmp_path / "kept.key").is_file()
        after = client.responses.create(model="tiny-chat", input=items, max_output_tokens=4)
        assert after.status == "incomplete" and after.usage.input_tokens > 0
