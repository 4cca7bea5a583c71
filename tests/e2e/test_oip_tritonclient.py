"""tritonclient[http], unchanged, against the real server: health, metadata, infer, rerank, and
images to a vision chat model in binary and JSON form."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from support.configs import model_toml
from support.reranking import DOCUMENTS, QUERY, in_document_order, rerank
from support.tiny_vision import build_tiny_vision_pair, mtmd_available, png_bytes
from tritonclient.utils import InferenceServerException


@pytest.fixture
def client(server):
    return triton.InferenceServerClient(server.host, network_timeout=120)


def text_input(name: str, values: list[str], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(
        np.array([v.encode() for v in values], dtype=object), binary_data=binary
    )
    return tensor


def as_text(value: bytes | str) -> str:
    """tritonclient gives bytes for binary outputs and str for JSON ones."""
    return value.decode() if isinstance(value, bytes) else value


def test_health_and_server_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "localoip"
    assert {"binary_tensor_data", "model_repository", "generate"} <= set(meta["extensions"])


def test_model_metadata_lists_the_chat_tensor_contract(client):
    meta = client.get_model_metadata("tiny-chat")
    assert meta["platform"] == "llama-cpp"
    assert {t["name"] for t in meta["inputs"]} == {"role", "content", "type", "prompt"}
    outputs = {t["name"]: t for t in meta["outputs"]}
    assert set(outputs) == {"role", "content", "text", "reasoning"}  # reasoning: optional
    assert outputs["reasoning"]["datatype"] == "BYTES"
    assert all(t["datatype"] == "BYTES" for t in meta["inputs"])
    assert client.get_model_metadata("tiny-chat", model_version="1")["name"] == "tiny-chat"


def test_model_readiness(client):
    assert client.is_model_ready("tiny-chat")
    assert client.is_model_ready("minilm", model_version="1")
    assert not client.is_model_ready("missing")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_chat_infer_is_deterministic_at_temperature_zero(client, binary):
    inputs = [
        text_input("role", ["system", "user"], binary),
        text_input("content", ["You are terse.", "Say hi"], binary),
    ]
    params = {"max_tokens": 8, "temperature": 0.0}
    outputs = [
        triton.InferRequestedOutput("content", binary_data=binary),
        triton.InferRequestedOutput("role", binary_data=binary),
    ]
    first = client.infer("tiny-chat", inputs, outputs=outputs, parameters=params)
    second = client.infer("tiny-chat", inputs, outputs=outputs, parameters=params)
    content = first.as_numpy("content")
    assert content.shape == (1,)
    assert as_text(first.as_numpy("role")[0]) == "assistant"
    assert len(content[0]) > 0
    assert content[0] == second.as_numpy("content")[0]


def test_binary_and_json_modes_give_the_same_chat_reply(client):
    params = {"max_tokens": 6, "temperature": 0.0}
    replies = []
    for binary in (True, False):
        inputs = [text_input("role", ["user"], binary), text_input("content", ["hello"], binary)]
        result = client.infer("tiny-chat", inputs, parameters=params)
        replies.append(as_text(result.as_numpy("content")[0]))
    assert replies[0] == replies[1]


def test_completion_with_several_prompts_gives_one_text_each(client):
    result = client.infer(
        "tiny-chat",
        [text_input("prompt", ["one", "two", "three"], True)],
        parameters={"max_tokens": 4, "temperature": 0.0},
    )
    texts = result.as_numpy("text")
    assert texts.shape == (3,)
    assert all(len(t) > 0 for t in texts)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_minilm_embeddings_are_normalised_and_semantic(client, binary):
    sentences = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock prices fell."]
    result = client.infer("minilm", [text_input("input", sentences, binary)])
    vectors = result.as_numpy("embedding")
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3


def test_gguf_embeddings_are_mean_pooled_per_input(client):
    result = client.infer("tiny-embed", [text_input("input", ["a", "b c d"], True)])
    vectors = result.as_numpy("embedding")
    assert vectors.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_image_infer_returns_png_bytes_in_binary_mode(client):
    result = client.infer(
        "tiny-sd",
        [text_input("prompt", ["a red square"], True)],
        parameters={"n": 2, "seed": 7, "steps": 2, "width": 32, "height": 48},
    )
    images = result.as_numpy("image")
    assert images.shape == (2,)
    for png in images:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert image.size == (32, 48)


def test_image_infer_in_json_mode_is_base64_and_seeded(server):
    import httpx

    body = {
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["sky"]}],
        "parameters": {"seed": 3, "negative_prompt": "clouds", "guidance_scale": 1.5},
    }
    first = httpx.post(f"{server.url}/v2/models/tiny-sd/infer", json=body, timeout=60).json()
    second = httpx.post(f"{server.url}/v2/models/tiny-sd/infer", json=body, timeout=60).json()
    png = base64.b64decode(first["outputs"][0]["data"][0])
    assert Image.open(io.BytesIO(png)).size == (64, 64)  # the model's default size
    assert first["outputs"][0]["data"] == second["outputs"][0]["data"]


def test_seldon_style_chat_with_json_encoded_contents_and_llm_parameters(client):
    inputs = [
        text_input("role", ["system", "user"], True),
        text_input(
            "content", [json.dumps("Be brief."), json.dumps([{"type": "text", "text": "Hi"}])], True
        ),
        text_input("type", ["json", "json"], True),
    ]
    plain = [
        text_input("role", ["system", "user"], True),
        text_input("content", ["Be brief.", "Hi"], True),
    ]
    nested = {"llm_parameters": {"max_tokens": 5}, "kwargs": {"temperature": 0.0}}
    result = client.infer("tiny-chat", inputs, parameters=nested)
    expected = client.infer("tiny-chat", plain, parameters={"max_tokens": 5, "temperature": 0.0})
    assert result.as_numpy("content")[0] == expected.as_numpy("content")[0]


def test_repository_index_unload_and_load(client):
    index = {m["name"]: m for m in client.get_model_repository_index()}
    assert index["tiny-chat"]["state"] == "READY"
    assert index["missing"]["state"] == "UNAVAILABLE"
    assert "no such file" in index["missing"]["reason"]
    client.unload_model("tiny-embed")
    assert not client.is_model_ready("tiny-embed")
    with pytest.raises(InferenceServerException, match="not ready"):
        client.infer("tiny-embed", [text_input("input", ["x"], True)])
    client.load_model("tiny-embed")
    assert client.is_model_ready("tiny-embed")
    assert client.infer("tiny-embed", [text_input("input", ["x"], True)]).as_numpy(
        "embedding"
    ).shape == (1, 64)


def test_unknown_model_is_an_error_the_client_can_read(client):
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.get_model_metadata("nope")
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("nope", [text_input("input", ["x"], True)])


def test_unknown_version_is_rejected(client):
    with pytest.raises(InferenceServerException, match="no version '7'"):
        client.get_model_metadata("tiny-chat", model_version="7")


# -- rerank over OIP ---------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_reranks(client, http, binary):
    inputs = [text_input("query", [QUERY], binary), text_input("documents", DOCUMENTS, binary)]
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


def test_tritonclient_sees_a_400_for_a_missing_query(client):
    with pytest.raises(InferenceServerException) as raised:
        client.infer("tiny-rerank", [text_input("documents", ["a"], True)])
    assert raised.value.status() == "400"
    assert "query" in raised.value.message()


@pytest.fixture(scope="module")
def vision_client(servers, tmp_path_factory):
    """tritonclient on a server with the tiny vision pair: `eyes` reads images, `blind` (the
    same GGUF without its projector) does not."""
    if not mtmd_available():
        pytest.skip("llama-cpp-python without mtmd")
    model, mmproj = build_tiny_vision_pair(tmp_path_factory.mktemp("oip-vision"))
    config = model_toml(
        "eyes", "llama-cpp", str(model), threads=1, mmproj=str(mmproj)
    ) + model_toml("blind", "llama-cpp", str(model), threads=1)
    with servers.shared(servers.config(config, "oip-vision")) as running:
        yield triton.InferenceServerClient(running.host, network_timeout=120)


def image_input(pngs: list[bytes], binary: bool) -> triton.InferInput:
    """The `image` tensor: raw PNG bytes in binary form; base64 text in JSON, which has no
    bytes (tritonclient sends JSON BYTES as UTF-8 text)."""
    tensor = triton.InferInput("image", [len(pngs)], "BYTES")
    values = pngs if binary else [base64.b64encode(png) for png in pngs]
    tensor.set_data_from_numpy(np.array(values, dtype=object), binary_data=binary)
    return tensor


def look(client, model: str, pngs: list[bytes], binary: bool) -> str:
    inputs = [
        text_input("role", ["system", "user"], binary),
        text_input("content", ["Be brief.", "What is this?"], binary),
        image_input(pngs, binary),
    ]
    result = client.infer(model, inputs, parameters={"max_tokens": 8, "temperature": 0.0})
    return as_text(result.as_numpy("content")[0])


def test_a_vision_model_declares_its_optional_image_input(vision_client):
    eyes = {t["name"]: t for t in vision_client.get_model_metadata("eyes")["inputs"]}
    assert eyes["image"]["datatype"] == "BYTES"
    assert eyes["image"]["parameters"] == {"content_type": "image", "optional": True}
    blind = {t["name"] for t in vision_client.get_model_metadata("blind")["inputs"]}
    assert "image" not in blind


def test_a_real_png_reads_alike_in_binary_and_json(vision_client):
    red, green = png_bytes((200, 0, 0)), png_bytes((10, 200, 30))
    binary = look(vision_client, "eyes", [red], binary=True)
    assert binary and look(vision_client, "eyes", [red], binary=False) == binary
    assert look(vision_client, "eyes", [green], binary=True) != binary


@pytest.mark.parametrize(
    ("model", "pngs", "words"),
    [("blind", [png_bytes((1, 2, 3))], "reads no images"), ("eyes", [b"hello"], "not an image")],
    ids=["no-projector", "not-an-image"],
)
def test_bad_images_are_400s_in_oip_shape(vision_client, model, pngs, words):
    with pytest.raises(InferenceServerException) as caught:
        look(vision_client, model, pngs, binary=True)
    assert caught.value.status() == "400" and words in caught.value.message()
    assert look(vision_client, "eyes", [png_bytes((1, 2, 3))], binary=True)  # still serving
