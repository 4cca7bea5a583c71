"""Rerank over HTTP: a tiny cross-encoder, and cosine on embedding models, in the Jina/Cohere
shape at /rerank, /v1/rerank, /openai/v1/rerank and the model's infer path, and over OIP."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from openai import OpenAI
from tritonclient.utils import InferenceServerException

QUERY = "how do i bake bread?"
DOCUMENTS = [
    "knead the dough, let it rise, then bake the bread.",
    "the car engine needs new spark plugs.",
    "stock markets fell sharply today.",
    "bread, butter and jam.",
    "a short one.",
]
BREAD = [
    "Knead the dough, let it rise, and bake the bread in a hot oven for 30 minutes.",
    "A car engine turns fuel into motion with pistons and spark plugs.",
    "Stock markets fell today as investors worried about interest rates.",
]


def rerank(http: httpx.Client, path: str = "/v1/rerank", **body: object) -> dict:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def in_document_order(results: list[dict], n: int) -> np.ndarray:
    scores = np.full(n, np.nan, dtype=np.float32)
    for result in results:
        scores[result["index"]] = result["relevance_score"]
    return scores


def cosine(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit[1:] @ unit[0]


@pytest.fixture(scope="module")
def cross_encoder(tiny_dir):
    """The tiny cross-encoder, loaded in this process as sentence-transformers loads it."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(tiny_dir / "tiny-rerank"), device="cpu")


def test_cross_encoder_scores_are_its_predictions_sorted(http, cross_encoder):
    body = rerank(http, model="tiny-rerank", query=QUERY, documents=DOCUMENTS)
    assert set(body) == {"id", "model", "usage", "results"}
    assert body["id"].startswith("rerank-") and body["model"] == "tiny-rerank"
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(r["document"] == {"text": DOCUMENTS[r["index"]]} for r in results)
    expected = cross_encoder.predict([(QUERY, d) for d in DOCUMENTS])
    np.testing.assert_allclose(in_document_order(results, len(DOCUMENTS)), expected, atol=1e-5)
    assert len(set(np.round(expected, 4))) == len(DOCUMENTS), "scores should differ"
    pairs = cross_encoder.tokenizer([QUERY] * len(DOCUMENTS), DOCUMENTS)["input_ids"]
    assert body["usage"] == {"total_tokens": sum(map(len, pairs))}


def test_top_n_and_return_documents(http):
    full = rerank(http, model="tiny-rerank", query=QUERY, documents=DOCUMENTS)["results"]
    top = rerank(
        http,
        model="tiny-rerank",
        query=QUERY,
        documents=DOCUMENTS,
        top_n=2,
        return_documents=False,
    )["results"]
    assert [set(r) for r in top] == [{"index", "relevance_score"}] * 2
    assert [r["index"] for r in top] == [r["index"] for r in full[:2]]
    everything = rerank(http, model="tiny-rerank", query=QUERY, documents=DOCUMENTS, top_n=99)
    assert len(everything["results"]) == len(DOCUMENTS)


@pytest.mark.parametrize(
    "path",
    ["/rerank", "/v1/rerank", "/openai/v1/rerank", "/v2/models/tiny-rerank/infer/rerank"],
)
def test_every_path_and_document_form_gives_the_same_ranking(http, path):
    expected = rerank(http, model="tiny-rerank", query=QUERY, documents=DOCUMENTS)["results"]
    objects = [{"text": d} for d in DOCUMENTS]
    body = rerank(http, path, model="tiny-rerank", query=QUERY, documents=objects)
    assert [r["index"] for r in body["results"]] == [r["index"] for r in expected]
    np.testing.assert_allclose(
        [r["relevance_score"] for r in body["results"]],
        [r["relevance_score"] for r in expected],
        atol=1e-6,
    )


def test_minilm_ranks_the_bread_document_first(http):
    query = "How do I bake bread?"
    body = rerank(http, model="minilm", query=query, documents=BREAD)
    results = body["results"]
    assert results[0]["index"] == 0
    assert results[0]["relevance_score"] > results[1]["relevance_score"] + 0.2
    embedded = http.post("/v1/embeddings", json={"model": "minilm", "input": [query, *BREAD]})
    assert body["usage"]["total_tokens"] == embedded.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize("model", ["minilm", "tiny-embed"])
def test_embedding_models_rerank_by_the_cosine_of_their_embeddings(http, model):
    texts = [QUERY, *DOCUMENTS]
    data = http.post("/v1/embeddings", json={"model": model, "input": texts}).json()["data"]
    expected = cosine(np.array([d["embedding"] for d in data], dtype=np.float32))
    results = rerank(http, model=model, query=QUERY, documents=DOCUMENTS)["results"]
    np.testing.assert_allclose(in_document_order(results, len(DOCUMENTS)), expected, atol=1e-5)
    assert [r["index"] for r in results] == list(np.argsort(-expected, kind="stable"))


def test_models_advertise_rerank(http):
    cards = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert cards["tiny-rerank"]["capabilities"] == ["rerank"]
    assert cards["minilm"]["capabilities"] == ["embed", "rerank"]
    assert cards["tiny-embed"]["capabilities"] == ["embed", "rerank"]
    assert "rerank" not in cards["tiny-chat"]["capabilities"]


def test_the_openai_sdk_posts_to_the_rerank_route(server):
    client = OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    body = client.post(
        "/rerank",
        body={"model": "minilm", "query": "How do I bake bread?", "documents": BREAD},
        cast_to=object,
    )
    assert body["results"][0]["index"] == 0


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "tiny-rerank", "query": "q", "documents": []}, "documents", None),
        ({"model": "tiny-rerank", "documents": ["a"]}, "query", None),
        ({"model": "tiny-rerank", "query": "", "documents": ["a"]}, "query", None),
        ({"model": "tiny-rerank", "query": "q", "documents": ["a"], "top_n": 0}, "top_n", None),
        ({"model": "tiny-rerank", "query": "q", "documents": ["a"], "top_n": 1.5}, "top_n", None),
        ({"model": "tiny-rerank", "query": "q", "documents": ["a"], "top_n": "2"}, "top_n", None),
        ({"model": "tiny-rerank", "query": "q", "documents": [1, 2]}, "documents[0]", None),
        ({"model": "tiny-rerank", "query": "q", "documents": "a"}, "documents", None),
        (
            {"model": "tiny-rerank", "query": "q", "documents": [{"txt": "a"}]},
            "documents[0].text",
            None,
        ),
        ({"model": "minilm", "query": "q", "documents": ["a", ""]}, "documents[1]", None),
        ({"query": "q", "documents": ["a"]}, "model", None),
        (
            {"model": "tiny-chat", "query": "q", "documents": ["a"]},
            "model",
            "unsupported_capability",
        ),
        ({"model": "tiny-sd", "query": "q", "documents": ["a"]}, "model", "unsupported_capability"),
    ],
)
def test_bad_rerank_requests_are_400_in_openai_shape(http, body, param, code):
    response = http.post("/v1/rerank", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["code"] == code, error


def test_unknown_model_and_wrong_method_keep_the_openai_shape(http):
    missing = http.post("/rerank", json={"model": "nope", "query": "q", "documents": ["a"]})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    wrong = http.get("/rerank")
    assert wrong.status_code == 405
    assert set(wrong.json()["error"]) == {"message", "type", "param", "code"}


def test_a_cross_encoder_cannot_embed(http):
    response = http.post("/v1/embeddings", json={"model": "tiny-rerank", "input": "a"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_capability"


# -- OIP ----------------------------------------------------------------------------------------


def text_tensor(name: str, values: list[str]) -> dict:
    return {"name": name, "shape": [len(values)], "datatype": "BYTES", "data": values}


def triton_text(name: str, values: list[str], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=object), binary)
    return tensor


@pytest.fixture
def client(server):
    return triton.InferenceServerClient(server.host, network_timeout=120)


@pytest.mark.parametrize("model", ["tiny-rerank", "minilm", "tiny-embed"])
def test_oip_scores_are_in_document_order_and_match_the_rerank_route(http, model):
    inputs = [text_tensor("query", [QUERY]), text_tensor("documents", DOCUMENTS)]
    response = http.post(f"/v2/models/{model}/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    [scores] = response.json()["outputs"]
    assert scores["name"] == "scores" and scores["datatype"] == "FP32"
    assert scores["shape"] == [len(DOCUMENTS)]
    results = rerank(http, model=model, query=QUERY, documents=DOCUMENTS)["results"]
    expected = in_document_order(results, len(DOCUMENTS))
    np.testing.assert_allclose(scores["data"], expected, atol=1e-6)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_reranks(client, http, binary):
    inputs = [triton_text("query", [QUERY], binary), triton_text("documents", DOCUMENTS, binary)]
    result = client.infer("tiny-rerank", inputs)
    scores = result.as_numpy("scores")
    assert scores.dtype == np.float32 and scores.shape == (len(DOCUMENTS),)
    results = rerank(http, model="tiny-rerank", query=QUERY, documents=DOCUMENTS)["results"]
    np.testing.assert_allclose(scores, in_document_order(results, len(DOCUMENTS)), atol=1e-6)


def test_metadata_lists_the_rerank_tensors_for_models_that_rerank(client):
    meta = client.get_model_metadata("tiny-rerank")
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("query", "BYTES", [1]),
        ("documents", "BYTES", [-1]),
    ]
    assert [(t["name"], t["datatype"]) for t in meta["outputs"]] == [("scores", "FP32")]
    assert meta["parameters"]["capabilities"] == ["rerank"]
    minilm = client.get_model_metadata("minilm")
    assert {t["name"] for t in minilm["inputs"]} == {"input", "query", "documents"}
    assert {t["name"] for t in minilm["outputs"]} == {"embedding", "scores"}
    chat = client.get_model_metadata("tiny-chat")
    assert not {"query", "documents"} & {t["name"] for t in chat["inputs"]}


@pytest.mark.parametrize(
    ("model", "inputs", "needle"),
    [
        ("tiny-rerank", [text_tensor("documents", ["a"])], "missing ['query']"),
        ("tiny-rerank", [text_tensor("query", ["q"])], "missing ['documents']"),
        ("tiny-rerank", [text_tensor("query", ["q"]), text_tensor("documents", [])], "empty"),
        (
            "tiny-rerank",
            [text_tensor("query", ["q", "r"]), text_tensor("documents", ["a"])],
            "one text",
        ),
        (
            "minilm",
            [
                text_tensor("query", ["q"]),
                {"name": "documents", "shape": [1], "datatype": "FP32", "data": [1.0]},
            ],
            "BYTES",
        ),
        ("tiny-rerank", [text_tensor("input", ["a"])], "query, documents"),
        ("tiny-chat", [text_tensor("query", ["q"]), text_tensor("documents", ["a"])], "takes"),
    ],
)
def test_bad_oip_rerank_inputs_are_400(http, model, inputs, needle):
    response = http.post(f"/v2/models/{model}/infer", json={"inputs": inputs})
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["error"] and needle in body["error"], body


def test_tritonclient_sees_a_400_for_a_missing_query(client):
    with pytest.raises(InferenceServerException) as raised:
        client.infer("tiny-rerank", [triton_text("documents", ["a"], True)])
    assert raised.value.status() == "400"
    assert "query" in raised.value.message()
