"""Smoke tests on the default models.toml: SmolLM2, gemma3, MiniLM, and sd-turbo offline."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tritonclient.http as triton


@pytest.fixture(scope="module")
def client(default_server):
    return triton.InferenceServerClient(default_server.host, network_timeout=120)


def strings(name: str, values: list[str], binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=object), binary)
    return tensor


def test_server_is_ready_with_the_image_model_unavailable_offline(client):
    assert client.is_server_ready()
    index = {m["name"]: m for m in client.get_model_repository_index()}
    assert {n: index[n]["state"] for n in ("smollm2", "gemma3", "minilm")} == dict.fromkeys(
        ("smollm2", "gemma3", "minilm"), "READY"
    )
    assert index["sd-turbo"]["state"] == "UNAVAILABLE"
    assert "offline" in index["sd-turbo"]["reason"]


def test_each_model_logs_one_line_with_its_load_time(default_server):
    logs = default_server.logs()
    for name in ("smollm2", "gemma3", "minilm"):
        assert re.search(rf"model '{name}' \(\S+\) ready in \d+\.\d\d s", logs), logs
    assert re.search(
        r"model 'sd-turbo' \(diffusers\) unavailable after \d+\.\d\d s: .*offline", logs
    )


def test_smollm2_metadata_names_the_chat_tensors(client):
    meta = client.get_model_metadata("smollm2")
    assert meta["platform"] == "llama-cpp"
    assert {"role", "content"} <= {t["name"] for t in meta["inputs"]}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_smollm2_chats_through_its_own_template(client, binary):
    result = client.infer(
        "smollm2",
        [
            strings("role", ["system", "user"], binary),
            strings(
                "content", ["You are a helpful assistant.", "Say hello in one sentence."], binary
            ),
        ],
        outputs=[triton.InferRequestedOutput("content", binary_data=binary)],
        parameters={"max_tokens": 24, "temperature": 0.0},
    )
    reply = result.as_numpy("content")[0]
    reply = reply.decode() if isinstance(reply, bytes) else reply
    assert reply.strip() and "<|im_" not in reply
    assert re.search(r"[A-Za-z]{2,}", reply)


def test_gemma3_base_model_continues_a_prompt(client):
    result = client.infer(
        "gemma3",
        [strings("prompt", ["The capital of France is"])],
        parameters={"max_tokens": 8, "temperature": 0.0},
    )
    text = result.as_numpy("text")[0].decode()
    assert re.search(r"[A-Za-z]{2,}", text), text


def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence(client):
    result = client.infer(
        "minilm", [strings("input", ["How old are you?", "What is your age?", "The sky is blue."])]
    )
    v = result.as_numpy("embedding")
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]
