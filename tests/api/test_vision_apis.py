"""Images over Anthropic's Messages API, Ollama's /api and OIP, through their real clients, in
process: the same image gives the same reply and another image another, each image adds the
projector's positions to the prompt's count, and bad images are 400s in each API's shape."""

from __future__ import annotations

import base64
from pathlib import Path

import anthropic
import ollama
import pytest
from support.inprocess import InProcessApp
from support.tiny_vision import IMAGE_TOKENS, mtmd_available, noise_png, png_bytes

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")

RED, GREEN = png_bytes((200, 0, 0)), png_bytes((10, 200, 30))
CUT = RED[:40]  # a PNG cut off after its header
QUESTION = "What is this?"
# anthropic's create() has no temperature (Anthropic's newest models take none); the API does
GREEDY = {"extra_body": {"temperature": 0}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- Anthropic ---------------------------------------------------------------------------------


def image_block(data: bytes, media_type: str = "image/png") -> dict:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": b64(data)},
    }


def looking_at(*images: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": QUESTION}, *images]}]


def message(app: InProcessApp, *images: dict, model: str = "eyes") -> tuple[int, str]:
    reply = app.anthropic().messages.create(
        model=model, max_tokens=8, messages=looking_at(*images), **GREEDY
    )
    return prompt_tokens(reply.usage), reply.content[0].text


def prompt_tokens(usage: anthropic.types.Usage) -> int:
    """The whole prompt: input_tokens leaves out what the model's cache already held."""
    return usage.input_tokens + (usage.cache_read_input_tokens or 0)


def test_anthropic_images_count_their_positions_and_change_the_reply(vision_app):
    alone = message(vision_app)[0]
    tokens, red = message(vision_app, image_block(RED))
    assert tokens == alone + IMAGE_TOKENS
    assert message(vision_app, image_block(RED), image_block(GREEN))[0] == alone + 2 * IMAGE_TOKENS
    assert message(vision_app, image_block(GREEN))[1] != red
    assert message(vision_app, image_block(RED))[1] == red


def test_anthropic_streams_an_image_chat_as_it_answers_it_whole(vision_app):
    with vision_app.anthropic().messages.stream(
        model="eyes", max_tokens=8, messages=looking_at(image_block(RED)), **GREEDY
    ) as stream:
        final = stream.get_final_message()
    assert (prompt_tokens(final.usage), final.content[0].text) == message(
        vision_app, image_block(RED)
    )


def test_anthropic_count_tokens_counts_an_images_positions(vision_app):
    counted = vision_app.anthropic().messages.count_tokens(
        model="eyes", messages=looking_at(image_block(RED))
    )
    assert counted.input_tokens == message(vision_app, image_block(RED))[0]


def test_anthropic_reads_an_image_inside_a_tool_result(vision_app):
    def turns(*content: dict) -> list[dict]:
        call = {"type": "tool_use", "id": "call_1", "name": "camera", "input": {}}
        result = {"type": "tool_result", "tool_use_id": "call_1", "content": list(content)}
        return [
            {"role": "user", "content": "Take a picture."},
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [result]},
        ]

    text = {"type": "text", "text": "the picture"}
    client = vision_app.anthropic()
    counts = [
        client.messages.count_tokens(model="eyes", messages=turns(*content)).input_tokens
        for content in ([text], [text, image_block(RED)])
    ]
    assert counts[1] == counts[0] + IMAGE_TOKENS


def anthropic_refusal(app: InProcessApp, images: list[dict], model: str = "eyes") -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        message(app, *images, model=model)
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    return body["error"]["message"]


@pytest.mark.parametrize(
    ("images", "model", "words"),
    [
        ([image_block(b"hello world")], "eyes", "content[1]: not an image"),
        ([image_block(CUT)], "eyes", "content[1]: not an image"),
        (
            [
                {
                    **image_block(RED),
                    "source": {"type": "base64", "media_type": "image/png", "data": "@@"},
                }
            ],
            "eyes",
            "content[1].source.data: the image is not valid base64",
        ),
        ([image_block(noise_png((40, 40)))], "eyes-small", "content[1]: the image is"),
        ([image_block(png_bytes((0, 0, 0), (5000, 4000)))], "eyes", "pixels"),
        ([image_block(RED)] * 9, "eyes", "content[9]: 9 images"),
        ([image_block(RED)], "blind", "content[1]: this model reads no images"),
        (
            [{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}],
            "eyes",
            "content[1]: fetching images from URLs is off",
        ),
        (
            [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}],
            "eyes",
            "Files API",
        ),
        ([image_block(RED, "image/tiff")], "eyes", "media_type"),
    ],
    ids=[
        "not-an-image",
        "corrupt",
        "bad-base64",
        "too-many-bytes",
        "too-many-pixels",
        "too-many-images",
        "no-projector",
        "url-while-off",
        "file-source",
        "media-type",
    ],
)
def test_anthropic_refuses_bad_images_naming_the_block(vision_app, images, model, words):
    assert words in anthropic_refusal(vision_app, images, model)
    assert message(vision_app, image_block(RED))[0] > IMAGE_TOKENS  # still serving


# -- Ollama ------------------------------------------------------------------------------------


def ollama_chat(app: InProcessApp, *images: bytes | str | Path, model: str = "eyes"):
    turn = {"role": "user", "content": QUESTION, "images": list(images)}
    return app.ollama().chat(
        model=model, messages=[turn], options={"temperature": 0, "num_predict": 8}
    )


def test_ollama_chat_images_count_their_positions_and_change_the_reply(vision_app):
    alone = ollama_chat(vision_app).prompt_eval_count
    red = ollama_chat(vision_app, RED)
    assert red.prompt_eval_count == alone + IMAGE_TOKENS
    assert ollama_chat(vision_app, RED, GREEN).prompt_eval_count == alone + 2 * IMAGE_TOKENS
    assert ollama_chat(vision_app, GREEN).message.content != red.message.content
    assert ollama_chat(vision_app, b64(RED)).message.content == red.message.content
    turn = {"role": "user", "content": QUESTION, "images": [RED]}
    parts = list(
        vision_app.ollama().chat(
            model="eyes", messages=[turn], stream=True, options={"temperature": 0, "num_predict": 8}
        )
    )
    assert "".join(p.message.content for p in parts) == red.message.content
    assert parts[-1].prompt_eval_count == red.prompt_eval_count


def test_ollama_generate_with_images_is_a_one_turn_chat(vision_app, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(RED)
    reply = vision_app.ollama().generate(
        model="eyes",
        prompt=QUESTION,
        images=[picture],
        options={"temperature": 0, "num_predict": 8},
    )
    chat = ollama_chat(vision_app, RED)
    assert (reply.prompt_eval_count, reply.response) == (
        chat.prompt_eval_count,
        chat.message.content,
    )
    streamed = vision_app.ollama().generate(
        model="eyes",
        prompt=QUESTION,
        images=[RED],
        stream=True,
        options={"temperature": 0, "num_predict": 8},
    )
    assert "".join(part.response for part in streamed) == reply.response


def test_ollama_show_says_which_model_reads_images(vision_app):
    client = vision_app.ollama()
    eyes, blind = client.show("eyes"), client.show("blind")
    assert "vision" in eyes.capabilities and "vision" not in blind.capabilities
    assert eyes.details.families == [eyes.details.family, "clip"]
    assert blind.details.families == [blind.details.family]
    assert eyes.modelinfo == blind.modelinfo  # the same text model underneath


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/api/chat", {"images": [b64(b"hello world")]}, "not an image"),
        ("/api/chat", {"images": [b64(CUT)]}, "not an image"),
        ("/api/chat", {"images": ["not base64!"]}, "not valid base64"),
        ("/api/chat", {"images": [b64(noise_png((40, 40)))], "model": "eyes-small"}, "bytes"),
        ("/api/chat", {"images": [b64(png_bytes((0, 0, 0), (5000, 4000)))]}, "pixels"),
        ("/api/chat", {"images": [b64(RED)] * 9}, "at most 8"),
        ("/api/chat", {"images": [b64(RED)], "model": "blind"}, "reads no images"),
        ("/api/generate", {"images": ["https://example.com/a.png"]}, "not valid base64"),
        ("/api/generate", {"images": [b64(RED)], "raw": True}, "chat template"),
        ("/api/generate", {"images": [b64(RED)], "suffix": "end"}, "chat template"),
    ],
    ids=[
        "not-an-image",
        "corrupt",
        "bad-base64",
        "too-many-bytes",
        "too-many-pixels",
        "too-many-images",
        "no-projector",
        "a-url",
        "raw",
        "suffix",
    ],
)
def test_ollama_refuses_bad_images_with_400s_in_its_shape(vision_app, path, body, words):
    images = body.pop("images")
    request = {"model": "eyes", "stream": False, **body}
    if path == "/api/chat":
        request["messages"] = [{"role": "user", "content": QUESTION, "images": images}]
    else:
        request |= {"prompt": QUESTION, "images": images}
    answer = vision_app.client().post(path, json=request)
    assert answer.status_code == 400, answer.text
    assert list(answer.json()) == ["error"] and words in answer.json()["error"], answer.text
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_chat(vision_app, b"hello world")
    assert caught.value.status_code == 400
    assert ollama_chat(vision_app, RED).prompt_eval_count > IMAGE_TOKENS  # still serving


# -- OIP ---------------------------------------------------------------------------------------


def oip_chat(app: InProcessApp, model: str, *images: bytes):
    inputs = [
        {"name": "role", "datatype": "BYTES", "shape": [1], "data": ["user"]},
        {"name": "content", "datatype": "BYTES", "shape": [1], "data": [QUESTION]},
    ]
    if images:
        data = [b64(image) for image in images]
        inputs.append({"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data})
    body = {"inputs": inputs, "parameters": {"max_tokens": 8, "temperature": 0}}
    return app.client().post(f"/v2/models/{model}/infer", json=body)


def oip_reply(app: InProcessApp, *images: bytes) -> str:
    answer = oip_chat(app, "eyes", *images)
    assert answer.status_code == 200, answer.text
    return {o["name"]: o["data"][0] for o in answer.json()["outputs"]}["content"]


def openai_reply(app: InProcessApp, image: bytes) -> tuple[int, str]:
    """The same chat over /v1, its image before its text as OIP puts it."""
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(image)}},
        {"type": "text", "text": QUESTION},
    ]
    reply = app.openai().chat.completions.create(
        model="eyes", messages=[{"role": "user", "content": parts}], max_tokens=8, temperature=0
    )
    return reply.usage.prompt_tokens, reply.choices[0].message.content


def test_oip_metadata_declares_an_image_input_only_for_a_vision_model(vision_app):
    http = vision_app.client()
    eyes = {t["name"]: t for t in http.get("/v2/models/eyes").json()["inputs"]}
    blind = {t["name"] for t in http.get("/v2/models/blind").json()["inputs"]}
    assert eyes["image"] == {
        "name": "image",
        "datatype": "BYTES",
        "shape": [-1],
        "parameters": {"content_type": "image", "optional": True},
    }
    assert "image" not in blind and {"role", "content"} <= blind


def test_oip_reads_base64_images_in_json_with_the_last_user_message(vision_app):
    red = oip_reply(vision_app, RED)
    assert red == openai_reply(vision_app, RED)[1]
    assert oip_reply(vision_app, GREEN) != red
    assert oip_reply(vision_app, RED) == red


@pytest.mark.parametrize(
    ("model", "images", "words"),
    [
        ("blind", [RED], "reads no images"),
        ("eyes", [b"hello world"], "not an image"),
        ("eyes", [CUT], "not an image"),
        ("eyes", [png_bytes((0, 0, 0), (5000, 4000))], "pixels"),
        ("eyes", [RED] * 9, "at most 8"),
    ],
    ids=["no-projector", "not-an-image", "corrupt", "too-many-pixels", "too-many-images"],
)
def test_oip_refuses_bad_images_with_400s_in_its_shape(vision_app, model, images, words):
    answer = oip_chat(vision_app, model, *images)
    assert answer.status_code == 400, answer.text
    assert list(answer.json()) == ["error"] and words in answer.json()["error"], answer.text
    assert oip_reply(vision_app, RED)  # still serving


def test_oip_refuses_an_image_that_is_not_base64_in_json(vision_app):
    body = {
        "inputs": [
            {"name": "role", "datatype": "BYTES", "shape": [1], "data": ["user"]},
            {"name": "content", "datatype": "BYTES", "shape": [1], "data": [QUESTION]},
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["not base64!"]},
        ]
    }
    answer = vision_app.client().post("/v2/models/eyes/infer", json=body)
    assert answer.status_code == 400 and "base64" in answer.json()["error"], answer.text
