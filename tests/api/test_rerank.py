"""Rerank over HTTP: a tiny cross-encoder, and cosine on embedding models, in the Jina/Cohere
shape at /rerank, /v1/rerank, /openai/v1/rerank and the model's infer path, and over OIP."""

from __future__ import annotations

import numpy as np
import pytest
from support.reranking import DOCUMENTS, QUERY, in_document_order, rerank

BREAD = [
    "Knead the dough, let it rise, and bake the bread in a hot oven for 30 minutes.",
    "A car engine turns fuel into motion with pistons and spark plugs.",
    "Stock markets fell today as investors worried about interest rates.",
]


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


def test_the_openai_sdk_posts_to_the_rerank_route(app):
    client = app.openai("/v1", api_key="x")
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
