"""Smoke tests on the default models.toml: SmolLM2, gemma3, MiniLM, and sd-turbo offline."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tritonclient.http as triton


@pytest.fixture(scope="module")
def client(default_server):
    return triton.InferenceServerClient(default_server.host, network_timeout=120)


@pytest.fixture(scope="module")
def sdk(default_server):
    from openai import OpenAI

    return OpenAI(base_url=default_server.url + "/v1", api_key="unused", max_retries=0)


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


def test_loads_and_first_requests_are_logged_before_the_call(default_server, sdk):
    """So a log that ends in a native crash names the model that was loading or serving."""
    for _ in range(2):
        sdk.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    logs = default_server.logs()
    for name in ("smollm2", "gemma3", "minilm"):
        loading = logs.index(f"loading model '{name}'")
        assert loading < logs.index(f"model '{name}' (")  # the "ready in" line comes after
    assert logs.count("model 'smollm2': first chat request") == 1


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


LONG_PROMPT = (
    "Read this passage and answer the question after it. The Amazon river carries more water "
    "than any other river on Earth. It rises in the Andes mountains of Peru, crosses Brazil "
    "from west to east, and reaches the Atlantic Ocean near the city of Belem. Its basin holds "
    "the largest tropical rainforest in the world, home to many thousands of species of trees, "
    "fish, birds and insects, many of which live nowhere else. Question: where does the Amazon "
    "river rise?"
)


def test_smollm2_answers_a_long_prompt_on_its_quantized_weights(sdk):
    """Over 64 prompt tokens reach llama.cpp's batched quantized kernels (Q4_1), where a
    mis-built llama.cpp dies with SIGILL; the tiny F32 test model never goes there."""
    reply = sdk.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": LONG_PROMPT}],
        max_tokens=24,
        temperature=0,
    )
    assert reply.usage.prompt_tokens >= 64
    text = reply.choices[0].message.content
    assert re.search(r"[A-Za-z]{3,}", text), text
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_gemma3_continues_a_long_prompt_on_its_quantized_weights(sdk):
    """The same on gemma3's Q4_K_M weights, through completions."""
    reply = sdk.completions.create(
        model="gemma3", prompt=LONG_PROMPT + "\nAnswer:", max_tokens=16, temperature=0
    )
    assert reply.usage.prompt_tokens >= 64
    assert re.search(r"[A-Za-z]{3,}", reply.choices[0].text), reply.choices[0].text


def test_the_server_still_serves_every_default_model_after_long_prompts(sdk, client):
    """Runs after the two above (file order): the process and its models are all still there."""
    assert client.is_server_live()
    assert len(sdk.embeddings.create(model="minilm", input=LONG_PROMPT).data[0].embedding) == 384
    index = {m["name"]: m["state"] for m in client.get_model_repository_index()}
    assert [index[n] for n in ("smollm2", "gemma3", "minilm")] == ["READY"] * 3
