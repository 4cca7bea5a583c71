"""OIP parameters -> runtime settings, and Seldon-style chat contents."""

from __future__ import annotations

import json

import pytest
from localoip.app.api.oip.codecs import Tensor
from localoip.app.api.oip.dataplane import chat_messages
from localoip.app.api.oip.parameters import merged, sampling
from localoip.app.core.errors import InvalidInput
from localoip.app.core.limits import image_request
from localoip.runtimes.capabilities import Capability, ChatMessage, ImageRequest, Sampling
from localoip.runtimes.options import DiffusersOptions


def test_nested_seldon_parameters_override_top_level_ones():
    params = {
        "temperature": 1.0,
        "llm_parameters": {"temperature": 0.5, "top_p": 0.9},
        "kwargs": {"top_p": 0.8},
    }
    assert merged(params) == {"temperature": 0.5, "top_p": 0.8}


def test_sampling_reads_every_setting():
    result = sampling(
        {
            "max_new_tokens": 7,
            "temperature": 0,
            "top_k": 5,
            "stop": "\n",
            "seed": 3,
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
            "repeat_penalty": 1.1,
        },
        Capability.CHAT,
    )
    assert result == Sampling(
        max_tokens=7,
        temperature=0.0,
        top_k=5,
        stop=("\n",),
        seed=3,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        repeat_penalty=1.1,
    )
    assert sampling({}, Capability.CHAT) == Sampling()


def test_a_completion_may_ask_for_no_tokens_and_a_chat_for_one_at_least():
    assert sampling({"max_tokens": 0}, Capability.COMPLETION).max_tokens == 0
    assert sampling({"max_new_tokens": 0}, Capability.COMPLETION).max_tokens == 0
    with pytest.raises(InvalidInput, match="from 1 to"):
        sampling({"max_tokens": 0}, Capability.CHAT)
    with pytest.raises(InvalidInput, match="from 0 to"):
        sampling({"max_tokens": -1}, Capability.COMPLETION)


def test_image_request_from_size_or_width_and_height():
    assert image_request(
        "p", {"size": "64x32", "n": 2, "num_inference_steps": 3}, DiffusersOptions(max_images=4)
    ) == ImageRequest(prompt="p", n=2, width=64, height=32, steps=3)
    with pytest.raises(InvalidInput, match="from 1 to 2"):
        image_request("p", {"n": 3}, DiffusersOptions(max_images=2))


@pytest.mark.parametrize("fields", [{"size": "1032x64"}, {"width": 1032}, {"height": 2048}])
def test_an_image_request_is_held_to_the_models_max_size(fields):
    limits = DiffusersOptions(max_size=1024)
    with pytest.raises(InvalidInput, match="from 8 to 1024"):
        image_request("p", fields, limits)
    assert image_request("p", {"size": "1024x1024"}, limits).width == 1024


def tensor(name: str, values: list[str]) -> Tensor:
    return Tensor(name, "BYTES", [len(values)], [v.encode() for v in values], {})


def test_chat_contents_plain_json_encoded_and_text_parts():
    parts = json.dumps([{"type": "text", "text": "a "}, {"type": "text", "text": "b"}])
    messages = chat_messages(
        {
            "role": tensor("role", ["system", "user", "user", "assistant"]),
            "content": tensor("content", ["plain", json.dumps("quoted"), parts, "[1, 2]"]),
        }
    )
    assert [m.content for m in messages] == ["plain", "quoted", "a b", "[1, 2]"]
    assert messages[0] == ChatMessage("system", "plain")


def test_text_typed_content_is_taken_literally():
    messages = chat_messages(
        {
            "role": tensor("role", ["user"]),
            "content": tensor("content", ['"x"']),
            "type": tensor("type", ["text"]),
        }
    )
    assert messages[0].content == '"x"'


def test_an_empty_chat_is_rejected():
    with pytest.raises(InvalidInput, match="at least one message"):
        chat_messages({"role": tensor("role", []), "content": tensor("content", [])})
