"""The OpenAI SDK and curl code equivalent to a playground action, for /v1 and Seldon URLs."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Snippet:
    title: str
    language: str  # "python" | "bash"
    code: str


def py(value: Any, indent: int = 4) -> str:
    """A Python literal for JSON-like data (JSON's strings and numbers are Python's too)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        pad = " " * (indent + 4)
        items = "".join(f"{pad}{py(v, indent + 4)},\n" for v in value)
        return f"[\n{items}{' ' * indent}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {py(v, indent)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py(v, indent) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def call(target: str, kwargs: dict[str, Any]) -> str:
    """`target(` with one keyword argument per line `)`."""
    lines = "".join(f"    {key}={py(value)},\n" for key, value in kwargs.items())
    return f"{target}(\n{lines})"


def client(base_url: str) -> str:
    # localoip checks no key unless LOCALOIP_API_KEY is set; the SDK insists on one anyway.
    return f'from openai import OpenAI\n\nclient = OpenAI(base_url="{base_url}", api_key="x")\n'


def json_text(body: dict[str, Any]) -> str:
    """A JSON object with a key per line, and each object of a list of objects on its own line."""

    def value(v: Any) -> str:
        if isinstance(v, list) and v and all(isinstance(item, dict) for item in v):
            items = ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in v)
            return f"[\n{items}\n  ]"
        return json.dumps(v, ensure_ascii=False)

    fields = ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in body.items())
    return f"{{\n{fields}\n}}"


def curl_post(url: str, body: dict[str, Any], stream: bool = False) -> str:
    flags = "-N " if stream else ""
    data = json_text(body)
    header = "-H 'content-type: application/json'"
    return f"curl {flags}{url} \\\n  {header} \\\n  -d {shlex.quote(data)}"


def both_urls(
    server: str, model: str, python_body: str, route: str, body: dict[str, Any], stream: bool
) -> list[Snippet]:
    """Python and curl, at /v1 and at the Seldon-style /v2/models/{model}/infer base URL."""
    v1 = f"{server}/v1"
    seldon = f"{server}/v2/models/{model}/infer"
    return [
        Snippet("Python, OpenAI SDK at /v1", "python", client(v1) + python_body),
        Snippet("Python, Seldon-style base URL", "python", client(seldon) + python_body),
        Snippet("curl at /v1", "bash", curl_post(f"{v1}/{route}", body, stream)),
        Snippet("curl, Seldon-style URL", "bash", curl_post(f"{seldon}/{route}", body, stream)),
    ]


def chat(
    server: str, model: str, messages: list[dict[str, str]], settings: dict[str, Any]
) -> list[Snippet]:
    """A streamed chat completion with the given messages and settings (None ones left out)."""
    given = {k: v for k, v in settings.items() if v is not None}
    kwargs = {"model": model, "messages": messages, **given, "stream": True}
    body = call("stream = client.chat.completions.create", kwargs) + (
        '\nfor chunk in stream:\n    print(chunk.choices[0].delta.content or "", end="")\n'
    )
    return both_urls(server, model, body, "chat/completions", kwargs, stream=True)


def images(server: str, model: str, prompt: str, settings: dict[str, Any]) -> list[Snippet]:
    """An image generation; localoip's extra fields go in the SDK's `extra_body`."""
    given = {k: v for k, v in settings.items() if v is not None}
    standard = {k: given.pop(k) for k in ("n", "size") if k in given}
    kwargs: dict[str, Any] = {"model": model, "prompt": prompt, **standard}
    if given:
        kwargs["extra_body"] = given
    body = call("result = client.images.generate", kwargs) + (
        "\nfor image in result.data:\n    print(image.url)\n"
    )
    wire = {"model": model, "prompt": prompt, **standard, **given}
    return both_urls(server, model, body, "images/generations", wire, stream=False)


def embeddings(server: str, model: str, sentences: list[str]) -> list[Snippet]:
    kwargs = {"model": model, "input": sentences, "encoding_format": "float"}
    body = call("result = client.embeddings.create", kwargs) + (
        "\nvectors = [item.embedding for item in result.data]\n"
    )
    return both_urls(server, model, body, "embeddings", kwargs, stream=False)


def models(server: str, model: str) -> list[Snippet]:
    """Listing models, and loading or unloading one through the OIP repository extension."""
    v1 = f"{server}/v1"
    seldon = f"{server}/v2/models/{model}/infer"
    listing = "for model in client.models.list():\n    print(model.id, model.state)\n"
    one = f'print(client.models.retrieve("{model}"))\n'
    repository = f"{server}/v2/repository/models/{model}"
    return [
        Snippet("Python, OpenAI SDK at /v1", "python", client(v1) + listing),
        Snippet("Python, Seldon-style base URL", "python", client(seldon) + one),
        Snippet(
            "curl: list, unload, load",
            "bash",
            f"curl {v1}/models\ncurl -X POST {repository}/unload\ncurl -X POST {repository}/load",
        ),
        Snippet("curl, Seldon-style URL", "bash", f"curl {seldon}/models/{model}"),
    ]
