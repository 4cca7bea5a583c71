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


def client(base_url: str, key_env: str | None) -> str:
    """The SDK client; `key_env` names the variable holding the server's key, if it has one."""
    if key_env is None:
        # localoip checks no key unless LOCALOIP_API_KEY is set; the SDK insists on one anyway.
        return f'from openai import OpenAI\n\nclient = OpenAI(base_url="{base_url}", api_key="x")\n'
    return (
        "import os\n\nfrom openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}", api_key=os.environ["{key_env}"])\n'
    )


def bearer(key_env: str | None) -> str:
    """curl's header for the key, before a URL; nothing without a key."""
    return f'-H "Authorization: Bearer ${key_env}" ' if key_env else ""


def json_text(body: dict[str, Any]) -> str:
    """A JSON object with a key per line, and each object of a list of objects on its own line."""

    def value(v: Any) -> str:
        if isinstance(v, list) and v and all(isinstance(item, dict) for item in v):
            items = ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in v)
            return f"[\n{items}\n  ]"
        return json.dumps(v, ensure_ascii=False)

    fields = ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in body.items())
    return f"{{\n{fields}\n}}"


def curl_post(url: str, body: dict[str, Any], stream: bool, key_env: str | None) -> str:
    flags = ("-N " if stream else "") + bearer(key_env)
    data = json_text(body)
    header = "-H 'content-type: application/json'"
    return f"curl {flags}{url} \\\n  {header} \\\n  -d {shlex.quote(data)}"


def both_urls(
    server: str,
    model: str,
    python_body: str,
    route: str,
    body: dict[str, Any],
    stream: bool,
    key_env: str | None,
) -> list[Snippet]:
    """Python and curl, at /v1 and at the Seldon-style /v2/models/{model}/infer base URL."""
    v1 = f"{server}/v1"
    seldon = f"{server}/v2/models/{model}/infer"
    return [
        Snippet("Python, OpenAI SDK at /v1", "python", client(v1, key_env) + python_body),
        Snippet("Python, Seldon-style base URL", "python", client(seldon, key_env) + python_body),
        Snippet("curl at /v1", "bash", curl_post(f"{v1}/{route}", body, stream, key_env)),
        Snippet(
            "curl, Seldon-style URL", "bash", curl_post(f"{seldon}/{route}", body, stream, key_env)
        ),
    ]


EXTRA_CHAT_FIELDS = ("continue_final_message",)
"""Chat fields beyond OpenAI's, which the SDK sends in `extra_body`."""


def chat(
    server: str,
    model: str,
    messages: list[dict[str, str]],
    settings: dict[str, Any],
    key_env: str | None = None,
) -> list[Snippet]:
    """A streamed chat completion with the given messages and settings (None ones left out);
    curl's body is the request exactly as /v1 receives it."""
    given = {k: v for k, v in settings.items() if v is not None}
    wire = {"model": model, "messages": messages, **given, "stream": True}
    extra = {k: given.pop(k) for k in EXTRA_CHAT_FIELDS if k in given}
    kwargs: dict[str, Any] = {"model": model, "messages": messages, **given, "stream": True}
    if extra:
        kwargs["extra_body"] = extra
    body = call("stream = client.chat.completions.create", kwargs) + (
        '\nfor chunk in stream:\n    print(chunk.choices[0].delta.content or "", end="")\n'
    )
    return both_urls(server, model, body, "chat/completions", wire, True, key_env)


def oip_infer(server: str, model: str, body: dict[str, Any], key_env: str | None = None) -> Snippet:
    """curl for an OIP (KServe v2) infer request with the given JSON body."""
    url = f"{server}/v2/models/{model}/infer"
    return Snippet("curl, OIP infer (tensors)", "bash", curl_post(url, body, False, key_env))


def images(
    server: str, model: str, prompt: str, settings: dict[str, Any], key_env: str | None = None
) -> list[Snippet]:
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
    return both_urls(server, model, body, "images/generations", wire, False, key_env)


def embeddings(
    server: str, model: str, sentences: list[str], key_env: str | None = None
) -> list[Snippet]:
    kwargs = {"model": model, "input": sentences, "encoding_format": "float"}
    body = call("result = client.embeddings.create", kwargs) + (
        "\nvectors = [item.embedding for item in result.data]\n"
    )
    return both_urls(server, model, body, "embeddings", kwargs, False, key_env)


def models(server: str, model: str, key_env: str | None = None) -> list[Snippet]:
    """Listing models, and loading or unloading one through the OIP repository extension."""
    v1 = f"{server}/v1"
    seldon = f"{server}/v2/models/{model}/infer"
    listing = "for model in client.models.list():\n    print(model.id, model.state)\n"
    one = f'print(client.models.retrieve("{model}"))\n'
    repository = f"{server}/v2/repository/models/{model}"
    curl = f"curl {bearer(key_env)}"
    return [
        Snippet("Python, OpenAI SDK at /v1", "python", client(v1, key_env) + listing),
        Snippet("Python, Seldon-style base URL", "python", client(seldon, key_env) + one),
        Snippet(
            "curl: list, unload, load",
            "bash",
            f"{curl}{v1}/models\n{curl}-X POST {repository}/unload\n"
            f"{curl}-X POST {repository}/load",
        ),
        Snippet("curl, Seldon-style URL", "bash", f"{curl}{seldon}/models/{model}"),
    ]
