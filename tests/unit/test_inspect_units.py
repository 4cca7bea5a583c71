"""Pure parts of the inspector, branch-here and run cards: a reply's request in its three
forms, the branch point, token shades, the SDK snippet's extra_body, and file digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from localoip.app.core.errors import NotFound
from localoip.app.core.model_digest import file_digest
from localoip.app.playground import snippets
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.records.conversations import MessageMeta, TokenChoice
from localoip.app.playground.replies import TokenView, branch_point, token_views
from localoip.app.playground.reply_request import ReplyRequest
from localoip.runtimes.capabilities import ChatMessage
from localoip.runtimes.wire.oip import decode_tensors

SETTINGS = ChatSettings("m", "Be brief.", 0.5, 32, 7, top_logprobs=2)
PAST = [ChatMessage("user", "Hi")]


def test_a_branch_request_ends_with_the_reply_so_far_and_continues_it() -> None:
    asked = ReplyRequest(SETTINGS, PAST, "Hel")
    chat = asked.chat_request()
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hel"),
    ]
    assert chat.continue_final and chat.logprobs == 2
    assert (chat.sampling.temperature, chat.sampling.max_tokens, chat.sampling.seed) == (0.5, 32, 7)
    assert asked.openai_body() == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hel"},
        ],
        "temperature": 0.5,
        "max_tokens": 32,
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "continue_final_message": True,
        "stream": True,
    }


def test_a_whole_reply_request_does_not_continue_anything() -> None:
    chat = ReplyRequest(ChatSettings("m", "", None, None, None), PAST).chat_request()
    assert not chat.continue_final and chat.logprobs is None
    assert [m.role for m in chat.messages] == ["user"]


def test_the_oip_form_decodes_back_to_the_same_messages_and_names_what_it_loses() -> None:
    asked = ReplyRequest(SETTINGS, PAST, "Hel")
    body = asked.oip_body()

    class Wire:
        def __init__(self, item: dict) -> None:
            self.__dict__.update({"parameters": None, **item})

    tensors = decode_tensors([Wire(i) for i in body["inputs"]], b"")
    assert tensors["role"].strings() == ["system", "user", "assistant"]
    # Seldon's documented chat tensors: contents as they are, each with its `type`
    assert tensors["content"].strings() == ["Be brief.", "Hi", "Hel"]
    assert tensors["type"].strings() == ["text", "text", "text"]
    assert body["parameters"] == {"max_tokens": 32, "temperature": 0.5, "seed": 7}
    assert len(asked.beyond_tensors()) == 2
    assert ReplyRequest(ChatSettings("m", "", None, None, None), PAST).beyond_tensors() == []


def test_the_sdk_snippet_sends_continue_final_message_in_extra_body_and_curl_in_the_body() -> None:
    asked = ReplyRequest(SETTINGS, PAST, "Hel")
    code = snippets.chat("http://h", "m", asked.wire_messages(), asked.openai_fields())
    python = code[0].code
    assert 'extra_body={"continue_final_message": True}' in python
    compile(python, "snippet", "exec")
    curl = code[2].code
    body = json.loads(curl.split("-d '", 1)[1].rstrip("'"))
    assert body == asked.openai_body()


TOKENS = [
    TokenChoice("He", -0.1, [("He", -0.1), ("Hi", -2.5)]),
    TokenChoice("llo", -0.7, [("llo", -0.7), ("y", -1.0)]),
]


def test_a_branch_point_keeps_the_tokens_before_and_takes_the_alternative() -> None:
    prefix, kept = branch_point(MessageMeta(tokens=TOKENS), 1, 1)
    assert prefix == "Hey"
    assert [t.token for t in kept] == ["He", "y"] and kept[1].logprob == -1.0
    assert kept[1].top == TOKENS[1].top  # the branch's token still offers the others


def test_a_branch_point_joins_the_bytes_of_tokens_that_split_a_character() -> None:
    euro = [
        TokenChoice("\\xe2\\x82", -0.2, [("\\xe2\\x82", -0.2)], raw=b"\xe2\x82"),
        TokenChoice("\\xac", -0.1, [("\\xac", -0.1), ("\\xbf", -3.0)], b"\xac", [b"\xac", b"\xbf"]),
    ]
    prefix, kept = branch_point(MessageMeta(tokens=euro), 1, 0)
    assert prefix == "€"
    prefix, kept = branch_point(MessageMeta(tokens=euro), 1, 1)
    assert prefix == "₿" and kept[1].raw == b"\xbf"


@pytest.mark.parametrize(("index", "alternative"), [(2, 0), (-1, 0), (0, 2), (0, -1)])
def test_a_branch_point_outside_the_reply_is_not_found(index: int, alternative: int) -> None:
    with pytest.raises(NotFound):
        branch_point(MessageMeta(tokens=TOKENS), index, alternative)


def test_tokens_are_shaded_by_probability_in_fifths() -> None:
    shades = [
        v.shade for v in token_views([TokenChoice("a", lp) for lp in (-5.0, -0.7, -0.01, 0.0)])
    ]
    assert shades == [0, 2, 4, 4]
    assert TokenView(0, "x", None).shade == 4  # nothing predicted it: not flagged as unlikely


def test_a_file_digest_is_its_sha256_and_follows_a_change(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    assert file_digest(model) == "sha256:" + hashlib.sha256(b"weights").hexdigest()
    model.write_bytes(b"other weights!")
    assert file_digest(model) == "sha256:" + hashlib.sha256(b"other weights!").hexdigest()


def test_a_folder_digest_covers_every_file_and_its_name(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "a.bin").write_bytes(b"1")
    (tmp_path / "b.json").write_bytes(b"2")
    first = file_digest(tmp_path)
    (tmp_path / "b.json").rename(tmp_path / "c.json")
    assert file_digest(tmp_path) != first
