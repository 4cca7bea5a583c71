"""OIP over plain HTTP (httpx): generate, streaming, headerless bodies, and bad input."""

from __future__ import annotations

import json
import struct
import threading

import httpx
import pytest

CHAT = [
    {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
    {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["hello"]},
]


def chat_body(**parameters) -> dict:
    return {"inputs": CHAT, "parameters": {"max_tokens": 4, "temperature": 0.0, **parameters}}


def assert_oip_error(response: httpx.Response, status: int, *needles: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    for needle in needles:
        assert needle in body["error"], body["error"]


def test_health_bodies(http):
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}


def test_infer_without_content_type_header(http):
    raw = json.dumps(chat_body()).encode()
    response = http.post("/v2/models/tiny-chat/infer", content=raw, headers={"content-type": ""})
    assert response.status_code == 200
    assert response.json()["outputs"][1]["name"] == "content"


def test_request_id_is_echoed(http):
    response = http.post("/v2/models/tiny-chat/infer", json={**chat_body(), "id": "req-42"})
    assert response.json()["id"] == "req-42"


def test_versioned_infer_route(http):
    response = http.post("/v2/models/tiny-chat/versions/1/infer", json=chat_body())
    assert response.status_code == 200
    assert response.json()["model_version"] == "1"


def test_generate_returns_text_output_and_details(http):
    body = {"text_input": "Once upon", "parameters": {"max_tokens": 5, "temperature": 0}}
    first = http.post("/v2/models/tiny-chat/generate", json=body).json()
    second = http.post("/v2/models/tiny-chat/versions/1/generate", json=body).json()
    assert first["model_name"] == "tiny-chat"
    assert first["text_output"] == second["text_output"] != ""
    assert first["details"]["finish_reason"] == "length"
    assert first["details"]["completion_tokens"] == 5


def test_generate_stream_sends_sse_events_that_add_up_to_generate(http):
    body = {"text_input": "Once upon", "parameters": {"max_tokens": 6, "temperature": 0}}
    whole = http.post("/v2/models/tiny-chat/generate", json=body).json()["text_output"]
    events = []
    with http.stream("POST", "/v2/models/tiny-chat/generate_stream", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert len(events) >= 2
    assert "".join(e["text_output"] for e in events) == whole
    assert events[-1]["finish_reason"] == "length"


def sse_data(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_infer_stream_chat_deltas_add_up_to_the_infer_reply(http):
    whole = http.post("/v2/models/tiny-chat/infer", json=chat_body(max_tokens=6)).json()
    with http.stream(
        "POST", "/v2/models/tiny-chat/infer_stream", json=chat_body(max_tokens=6)
    ) as r:
        events = sse_data(r)
    assert len(events) >= 2
    contents = [
        "".join(o["data"][0] for o in e["outputs"] if o["name"] == "content") for e in events
    ]
    assert "".join(contents) == whole["outputs"][1]["data"][0]


def test_infer_stream_of_embeddings_answers_once(http):
    body = {"inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}
    with http.stream("POST", "/v2/models/minilm/versions/1/infer_stream", json=body) as r:
        (event,) = sse_data(r)
    assert event["outputs"][0]["shape"] == [2, 384]


def test_infer_stream_validates_before_streaming(http):
    body = {"inputs": [{"name": "nope", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}
    assert_oip_error(http.post("/v2/models/tiny-chat/infer_stream", json=body), 400, "takes inputs")
    assert_oip_error(
        http.post("/v2/models/missing/infer_stream", json=chat_body()), 503, "not ready"
    )


def test_stop_strings_end_generation(http):
    body = {"text_input": "abc", "parameters": {"max_tokens": 30, "temperature": 0}}
    full = http.post("/v2/models/tiny-chat/generate", json=body).json()["text_output"]
    stop = full[3:5]
    body["parameters"]["stop"] = [stop]
    cut = http.post("/v2/models/tiny-chat/generate", json=body).json()
    assert cut["text_output"] == full[: full.index(stop)]
    assert cut["details"]["finish_reason"] == "stop_sequence"


def test_generate_stream_disconnect_frees_the_model(http):
    body = {"text_input": "Tell me", "parameters": {"max_tokens": 400, "temperature": 0}}
    with http.stream("POST", "/v2/models/tiny-chat/generate_stream", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # hang up after the first token
    response = http.post("/v2/models/tiny-chat/infer", json=chat_body(), timeout=20)
    assert response.status_code == 200


def test_concurrent_requests_to_one_llama_model_match_serial_results(http):
    """llama.cpp crashes when two threads share a model; the per-model lock must serialise them."""
    prompts = [f"prompt {i}" for i in range(6)]

    def complete(prompt: str) -> str:
        body = {"text_input": prompt, "parameters": {"max_tokens": 8, "temperature": 0}}
        return http.post("/v2/models/tiny-chat/generate", json=body).json()["text_output"]

    serial = [complete(p) for p in prompts]
    results: dict[int, str] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, complete(prompts[i])))
        for i in range(len(prompts))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(prompts))] == serial


def binary_request(values: list[bytes], declared: int | None = None, header: str | None = None):
    blob = b"".join(struct.pack("<I", len(v)) + v for v in values)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [len(values)],
                    "datatype": "BYTES",
                    "parameters": {
                        "binary_data_size": declared if declared is not None else len(blob)
                    },
                }
            ]
        }
    ).encode()
    return head + blob, {"Inference-Header-Content-Length": header or str(len(head))}


def test_binary_request_built_by_hand(http):
    content, headers = binary_request([b"hello", b"world"])
    response = http.post("/v2/models/minilm/infer", content=content, headers=headers)
    assert response.status_code == 200
    assert response.json()["outputs"][0]["shape"] == [2, 384]


BAD_INFER = [
    pytest.param(b"", "empty", id="empty-body"),
    pytest.param(b"{not json", "malformed", id="malformed-json"),
    pytest.param(b"[]", "Expected `object`", id="not-an-object"),
    pytest.param(json.dumps({"inputs": "x"}).encode(), "inputs", id="inputs-not-a-list"),
    pytest.param(json.dumps({}).encode(), "inputs", id="missing-inputs"),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1], "datatype": "STRING", "data": ["x"]}]}
        ).encode(),
        "datatype",
        id="unknown-datatype",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "data": ["x"]}]}
        ).encode(),
        "shape [2] (2 elements) but its data has 1",
        id="shape-mismatch",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [-1], "datatype": "BYTES", "data": ["x"]}]}
        ).encode(),
        "negative dimension",
        id="negative-shape",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
        ).encode(),
        "must be BYTES, got FP32",
        id="wrong-datatype",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": [5]}]}
        ).encode(),
        "must be strings",
        id="bytes-with-numbers",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
        ).encode(),
        "takes inputs: input",
        id="wrong-tensor-name",
    ),
    pytest.param(
        json.dumps(
            {
                "inputs": [
                    {"name": "input", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                    {"name": "extra", "shape": [1], "datatype": "BYTES", "data": ["x"]},
                ]
            }
        ).encode(),
        "unexpected input",
        id="extra-tensor",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["x"]}] * 2}
        ).encode(),
        "given twice",
        id="duplicate-tensor",
    ),
    pytest.param(
        json.dumps({"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES"}]}).encode(),
        "no 'data'",
        id="no-data",
    ),
    pytest.param(
        json.dumps(
            {"inputs": [{"name": "input", "shape": [0], "datatype": "BYTES", "data": []}]}
        ).encode(),
        "empty",
        id="no-texts",
    ),
    pytest.param(
        json.dumps(
            {
                "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
                "outputs": [{"name": "vectors"}],
            }
        ).encode(),
        "unknown output 'vectors'",
        id="unknown-output",
    ),
]


@pytest.mark.parametrize(("body", "needle"), BAD_INFER)
def test_bad_infer_bodies_are_400_with_a_reason(http, body, needle):
    assert_oip_error(http.post("/v2/models/minilm/infer", content=body), 400, needle)


@pytest.mark.parametrize(
    ("content", "headers", "needle"),
    [
        pytest.param(*binary_request([b"x"], declared=100), "only", id="size-beyond-body"),
        pytest.param(
            *binary_request([b"x"], header="abc"), "must be an integer", id="header-not-int"
        ),
        pytest.param(
            *binary_request([b"x"], header="99999"), "body has only", id="header-too-long"
        ),
        pytest.param(
            binary_request([b"x"])[0] + b"junk",
            binary_request([b"x"])[1],
            "accounts for",
            id="trailing-bytes",
        ),
        pytest.param(*binary_request([b"\xff\xfe"]), "UTF-8", id="invalid-utf8"),
    ],
)
def test_bad_binary_framing_is_400(http, content, headers, needle):
    assert_oip_error(
        http.post("/v2/models/minilm/infer", content=content, headers=headers), 400, needle
    )


def test_truncated_binary_element_is_400(http):
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ]
        }
    ).encode()
    blob = struct.pack("<I", 10) + b"ab"  # says 10 bytes, carries 2
    response = http.post(
        "/v2/models/minilm/infer",
        content=head + blob,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert_oip_error(response, 400, "says 10 bytes")


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        ({"temperature": "hot"}, "'temperature' must be a number"),
        ({"temperature": 9}, "'temperature' must be a number from 0.0 to 2.0"),
        ({"max_tokens": 0}, "'max_tokens' must be an integer"),
        ({"max_tokens": True}, "'max_tokens' must be an integer"),
        ({"stop": 3}, "'stop' must be a string or a list"),
        ({"llm_parameters": "x"}, "'llm_parameters' must be an object"),
        ({"kwargs": {"top_p": 2}}, "'top_p'"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort must be one of none, minimal"),
        ({"chat_template_kwargs": "x"}, "chat_template_kwargs must be an object"),
        ({"max_reasoning_tokens": -1}, "max_reasoning_tokens must be an integer >= 0"),
        ({"parallel_tool_calls": "no"}, "'parallel_tool_calls' must be true or false"),
    ],
)
def test_bad_sampling_parameters_are_400(http, parameters, needle):
    body = {"inputs": CHAT, "parameters": parameters}
    assert_oip_error(http.post("/v2/models/tiny-chat/infer", json=body), 400, needle)


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        ({"size": "big"}, "'size' must look like '512x512'"),
        ({"width": 30}, "multiple of 8"),
        ({"n": 99}, "'n' must be an integer from 1 to 4"),
        ({"steps": 0}, "'steps'"),
        ({"negative_prompt": 1}, "negative_prompt"),
    ],
)
def test_bad_image_parameters_are_400(http, parameters, needle):
    body = {
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
        "parameters": parameters,
    }
    assert_oip_error(http.post("/v2/models/tiny-sd/infer", json=body), 400, needle)


def test_image_model_takes_one_prompt(http):
    body = {"inputs": [{"name": "prompt", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]}
    assert_oip_error(http.post("/v2/models/tiny-sd/infer", json=body), 400, "one prompt")


def test_chat_tensors_must_line_up(http):
    body = {"inputs": [CHAT[0], {**CHAT[1], "shape": [2], "data": ["a", "b"]}]}
    assert_oip_error(
        http.post("/v2/models/tiny-chat/infer", json=body), 400, "one element per message"
    )


def test_json_typed_content_must_be_json(http):
    body = {
        "inputs": [
            *CHAT[:1],
            {**CHAT[1], "data": ["{oops"]},
            {"name": "type", "shape": [1], "datatype": "BYTES", "data": ["json"]},
        ]
    }
    assert_oip_error(http.post("/v2/models/tiny-chat/infer", json=body), 400, "not valid JSON")


def test_unknown_model_is_404_on_every_model_route(http):
    assert_oip_error(http.get("/v2/models/nope"), 404, "unknown model 'nope'", "tiny-chat")
    assert_oip_error(http.get("/v2/models/nope/ready"), 404, "unknown model")
    assert_oip_error(http.post("/v2/models/nope/infer", json=chat_body()), 404, "unknown model")
    assert_oip_error(http.post("/v2/models/nope/generate", json={"text_input": "x"}), 404)
    assert_oip_error(http.post("/v2/repository/models/nope/load"), 404, "unknown model")
    assert_oip_error(http.post("/v2/repository/models/nope/unload"), 404, "unknown model")


def test_unavailable_models_are_503_with_the_reason(http):
    response = http.post("/v2/models/missing/infer", json=chat_body())
    assert_oip_error(response, 503, "not ready", "UNAVAILABLE", "no such file")
    response = http.post(
        "/v2/models/hub-offline/infer",
        json={"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
    )
    assert_oip_error(response, 503, "offline")
    assert http.get("/v2/models/missing/ready").json() == {"name": "missing", "ready": False}


def test_reloading_an_unavailable_model_reports_why(http):
    assert_oip_error(http.post("/v2/repository/models/missing/load"), 503, "no such file")


def test_capability_missing_is_400(http):
    assert_oip_error(
        http.post("/v2/models/minilm/generate", json={"text_input": "x"}),
        400,
        "cannot do completion",
    )
    response = http.post("/v2/models/minilm/generate_stream", json={"text_input": "x"})
    assert_oip_error(response, 400, "cannot do completion")


@pytest.mark.parametrize(
    ("route", "body", "needle"),
    [
        ("generate", b"{}", "text_input"),
        ("generate", b"nope", "malformed"),
        ("generate_stream", b'{"text_input": 5}', "Expected `str`"),
        ("generate", b'{"text_input": "x", "parameters": {"seed": -1}}', "'seed'"),
    ],
)
def test_bad_generate_bodies_are_400(http, route, body, needle):
    assert_oip_error(http.post(f"/v2/models/tiny-chat/{route}", content=body), 400, needle)


def test_repository_index_filters_ready_models(http):
    all_models = http.post("/v2/repository/index").json()
    ready = http.post("/v2/repository/index", json={"ready": True}).json()
    assert {m["name"] for m in all_models} >= {"missing", "tiny-chat"}
    assert "missing" not in {m["name"] for m in ready}
    assert_oip_error(http.post("/v2/repository/index", content=b'{"ready": "yes"}'), 400, "ready")


def test_oversized_body_is_413(http):
    big = b'{"inputs": [' + b" " * (2 * 1024 * 1024) + b"]}"
    response = http.post("/v2/models/minilm/infer", content=big)
    assert response.status_code == 413
    assert "error" in response.json()


def test_unknown_route_and_method_keep_the_oip_shape(http):
    assert_oip_error(http.get("/v2/nothing/here"), 404)
    assert_oip_error(http.get("/v2/models/tiny-chat/infer"), 405, "Method Not Allowed")


def test_server_keeps_serving_after_bad_requests(http):
    for body, _ in [(p.values[0], None) for p in BAD_INFER]:
        http.post("/v2/models/minilm/infer", content=body)
    assert http.post("/v2/models/tiny-chat/infer", json=chat_body()).status_code == 200
    states = {m["name"]: m["state"] for m in http.post("/v2/repository/index").json()}
    assert states["tiny-chat"] == states["minilm"] == "READY"
