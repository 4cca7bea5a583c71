"""`max_tokens: 0` on completions: with echo, the prompt and its own logprobs, no generation,
exactly as lm-evaluation-harness's loglikelihood requests read them; on every surface that
takes a completion (/v1, the Seldon sub-route, OIP), while a chat still needs a token."""

from __future__ import annotations

import pytest

PROMPT = "Paris is the capital of France"
# lm-evaluation-harness's loglikelihood request (lm_eval/models/openai_completions.py, with
# tokenized_requests=False; by default it sends token ids; its older releases sent max_tokens
# 0, current ones 1)
HARNESS = {"prompt": PROMPT, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}


def prompt_tokens(http) -> list[int]:
    return http.post("/tokenize", json={"model": "tiny-chat", "prompt": PROMPT}).json()["tokens"]


def loglikelihood(choice: dict, ctxlen: int) -> tuple[float, bool]:
    """What lm-evaluation-harness takes from a choice: the continuation's summed logprob and
    whether each of its tokens was the most likely (parse_logprobs, without its [:-1], which
    drops the token a max_tokens 1 request generated)."""
    logprobs = choice["logprobs"]
    scores, tops = logprobs["token_logprobs"][ctxlen:], logprobs["top_logprobs"][ctxlen:]
    return sum(scores), all(s == max(top.values()) for s, top in zip(scores, tops, strict=True))


def test_the_harness_request_gets_the_prompt_its_logprobs_and_no_generation(http):
    reply = http.post("/v1/completions", json={"model": "tiny-chat", **HARNESS})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    [choice] = body["choices"]
    assert choice["text"] == PROMPT and choice["finish_reason"] == "length"
    tokens = prompt_tokens(http)
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (len(tokens), 0)
    logprobs = choice["logprobs"]
    assert len(logprobs["tokens"]) == len(tokens) and "".join(logprobs["tokens"]) == PROMPT
    assert logprobs["text_offset"] == [
        len("".join(logprobs["tokens"][:i])) for i in range(len(tokens))
    ]
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    assert all(isinstance(p, float) and p <= 0 for p in logprobs["token_logprobs"][1:])
    assert all(len(top) == 1 for top in logprobs["top_logprobs"][1:])
    score, greedy = loglikelihood(choice, ctxlen=3)
    assert score == pytest.approx(sum(logprobs["token_logprobs"][3:])) and score < 0
    assert isinstance(greedy, bool)


def test_a_generated_token_after_the_prompt_leaves_its_scores_unchanged(http):
    """The harness's current request (max_tokens 1): the prompt's entries are the same, the
    generated token's follows them."""
    none = http.post("/v1/completions", json={"model": "tiny-chat", **HARNESS}).json()
    one = http.post(
        "/v1/completions", json={"model": "tiny-chat", **HARNESS, "max_tokens": 1}
    ).json()
    scored, with_one = none["choices"][0]["logprobs"], one["choices"][0]["logprobs"]
    n = len(scored["tokens"])
    assert with_one["tokens"][:n] == scored["tokens"] and len(with_one["tokens"]) == n + 1
    assert with_one["token_logprobs"][:n] == pytest.approx(scored["token_logprobs"], nan_ok=True)
    assert one["usage"]["completion_tokens"] == 1


def test_the_sdk_streams_the_same_prompt_logprobs(v1):
    whole = v1.completions.create(
        model="tiny-chat", prompt=PROMPT, max_tokens=0, echo=True, logprobs=3, temperature=0
    )
    choice = whole.choices[0]
    assert choice.text == PROMPT and choice.finish_reason == "length"
    assert whole.usage.completion_tokens == 0
    assert all(len(top) == 3 for top in choice.logprobs.top_logprobs[1:])
    chunks = list(
        v1.completions.create(
            model="tiny-chat",
            prompt=PROMPT,
            max_tokens=0,
            echo=True,
            logprobs=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = [c.choices[0] for c in chunks if c.choices]
    assert "".join(c.text for c in streamed) == PROMPT
    assert [t for c in streamed if c.logprobs for t in c.logprobs.tokens] == (
        choice.logprobs.tokens
    )
    assert streamed[-1].finish_reason == "length" and chunks[-1].usage.completion_tokens == 0


def test_no_tokens_without_echo_is_an_empty_length_reply(v1):
    """OpenAI's spec allows max_tokens 0 whatever echo says; without echo there is nothing to
    return, so the reply is empty text, as the old engines answered."""
    reply = v1.completions.create(model="tiny-chat", prompt=PROMPT, max_tokens=0)
    assert reply.choices[0].text == "" and reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 0 and reply.usage.prompt_tokens > 0


def test_the_seldon_sub_route_answers_as_v1_does(http):
    v1 = http.post("/v1/completions", json={"model": "tiny-chat", **HARNESS}).json()
    seldon = http.post("/v2/models/tiny-chat/infer/completions", json=HARNESS).json()
    assert seldon["choices"] == v1["choices"] and seldon["usage"] == v1["usage"]


def test_oip_completions_take_no_tokens_and_chats_need_one(http):
    generated = http.post(
        "/v2/models/tiny-chat/generate",
        json={"text_input": PROMPT, "parameters": {"max_tokens": 0}},
    )
    assert generated.status_code == 200, generated.text
    assert generated.json()["text_output"] == ""
    assert generated.json()["details"]["completion_tokens"] == 0
    chat = {
        "inputs": [
            {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
            {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["hi"]},
        ],
        "parameters": {"max_tokens": 0},
    }
    refused = http.post("/v2/models/tiny-chat/infer", json=chat)
    assert refused.status_code == 400 and "from 1 to" in refused.json()["error"]


@pytest.mark.parametrize("route", ["/v1/completions", "/v2/models/tiny-chat/infer/completions"])
def test_negative_max_tokens_is_a_400_naming_it(http, route):
    reply = http.post(route, json={"model": "tiny-chat", "prompt": "x", "max_tokens": -1})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "max_tokens" and error["type"] == "invalid_request_error"
    assert ">= 0" in error["message"]


def test_a_chat_still_needs_one_token(http):
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}
    reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "max_tokens"


def test_the_harness_token_prompts_score_exactly_the_ids_sent(http):
    """lm-evaluation-harness sends token ids by default (tokenized_requests), a batch of them
    in one request: each is scored as sent, no BOS added."""
    ids = prompt_tokens(http)
    body = {"model": "tiny-chat", **HARNESS, "prompt": [ids, ids[:3]]}
    reply = http.post("/v1/completions", json=body)
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["choices"]
    text = http.post("/v1/completions", json={"model": "tiny-chat", **HARNESS}).json()
    assert first["text"] == PROMPT and first["logprobs"] == text["choices"][0]["logprobs"]
    assert len(second["logprobs"]["tokens"]) == 3
    single = http.post("/v1/completions", json={"model": "tiny-chat", **HARNESS, "prompt": ids})
    assert single.json()["choices"][0]["logprobs"] == first["logprobs"]


@pytest.mark.parametrize("prompt", [["a", 1], [[1, 2], []], [10**9]])
def test_a_prompt_of_mixed_or_unknown_tokens_is_a_400(http, prompt):
    reply = http.post("/v1/completions", json={"model": "tiny-chat", "prompt": prompt})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "prompt"
