"""OpenAI routes, mounted at /v1 and at the Seldon-style /v2/models/{model}/infer[_stream]."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from localoip.app.api.openai import stored_routes, translate
from localoip.app.api.openai.image_store import ImageStore
from localoip.app.core.downloads import download_status
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.limits import image_request
from localoip.app.core.model_facts import facts_fields
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Store
from localoip.app.http.errors import OPENAI_HANDLERS, openai_body
from localoip.app.http.mount import mounted
from localoip.app.http.sse import EventStream, guarded, primed
from localoip.runtimes.capabilities import Capability, TextDelta
from localoip.runtimes.wire import openai_requests as types

STARTED = int(time.time())


def resolve(registry: Registry, body_model: str | None, route_model: str | None) -> ModelHandle:
    """The model a request is for: the URL's on sub-routes, which the body must agree with."""
    if route_model is not None:
        if body_model is not None and body_model != route_model:
            raise InvalidInput(
                f"the body names model {body_model!r} but the URL is for {route_model!r}",
                "model",
                "model_mismatch",
            )
        return registry.get(route_model)
    if not body_model:
        raise InvalidInput("model is required", "model")
    return registry.get(body_model)


def model_card(handle: ModelHandle) -> dict[str, Any]:
    return {
        "id": handle.name,
        "object": "model",
        "created": STARTED,
        "owned_by": "localoip",
        "runtime": handle.spec.runtime,
        "capabilities": sorted(handle.capabilities),
        **facts_fields(handle),
        "state": handle.state,
        "reason": handle.reason or None,
        "runner": handle.runner,
        "download": download_status(handle),
        "parallel": handle.parallel,
    }


def sse(frames: AsyncIterator[dict[str, Any]]) -> EventStream:
    """OpenAI-style SSE: JSON frames, then `data: [DONE]`; errors as an {"error": ...} frame."""

    async def encoded() -> AsyncIterator[str]:
        async for frame in frames:
            yield msgspec.json.encode(frame).decode()
        yield "[DONE]"

    return EventStream(guarded(encoded(), openai_body))


class OpenAIController(Controller):
    @get("/models")
    async def list_models(self, registry: Registry) -> dict[str, Any]:
        return {"object": "list", "data": [model_card(h) for h in registry.models.values()]}

    @get("/models/{model_id:str}")
    async def get_model(self, registry: Registry, model_id: str) -> dict[str, Any]:
        return model_card(registry.get(model_id))

    @post("/chat/completions", status_code=200)
    async def chat_completions(
        self, request: Request, registry: Registry, store: Store, route_model: str | None
    ) -> Any:
        req = translate.decode(await request.body(), types.ChatCompletionRequest)
        handle = resolve(registry, req.model, route_model)
        chat = translate.chat_request(req)
        handle.require(Capability.CHAT)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            # A stored stream needs its usage; the client gets it only if it asked.
            chunks = self._chat_chunks(handle, chat, req.n or 1, include_usage or bool(req.store))
            if req.store:
                chunks = stored_routes.keeping(store, req, chunks, include_usage)
            return sse(await primed(chunks))
        results = await asyncio.gather(
            *(
                handle.generate(Capability.CHAT, translate.per_choice(chat, i))
                for i in range(req.n or 1)
            )
        )
        completion = translate.chat_completion(handle.name, results)
        if req.store:
            await stored_routes.keep(store, req, completion)
        return completion

    async def _chat_chunks(
        self, handle: ModelHandle, chat: Any, n: int, include_usage: bool
    ) -> AsyncIterator[dict[str, Any]]:
        cid, created = translate.new_id("chatcmpl"), int(time.time())
        counted = (0, 0, 0)
        for index in range(n):
            request = translate.per_choice(chat, index)
            first, streamed = True, False
            async for delta in handle.generate_stream(Capability.CHAT, request):
                choice = translate.chat_delta_choice(index, delta, first, streamed)
                yield translate.chat_chunk(cid, created, handle.name, [choice], include_usage)
                first, streamed = False, streamed or bool(delta.call_pieces)
                counted = _count(delta, counted)
        if include_usage:
            final = translate.chat_chunk(cid, created, handle.name, [], False)
            yield final | {"usage": translate.usage(*counted)}

    @post("/completions", status_code=200)
    async def completions(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> Any:
        req = translate.decode(await request.body(), types.CompletionRequest)
        handle = resolve(registry, req.model, route_model)
        requests = [
            translate.per_choice(r, i)
            for r in translate.completion_requests(req)
            for i in range(req.n or 1)
        ]
        handle.require(Capability.COMPLETION)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return sse(await primed(self._completion_chunks(handle, requests, include_usage)))
        results = await asyncio.gather(
            *(handle.generate(Capability.COMPLETION, r) for r in requests)
        )
        return translate.completion(handle.name, results)

    async def _completion_chunks(
        self, handle: ModelHandle, requests: list[Any], include_usage: bool
    ) -> AsyncIterator[dict[str, Any]]:
        cid, created = translate.new_id("cmpl"), int(time.time())
        counted = (0, 0, 0)
        for index, request in enumerate(requests):
            offset = 0
            async for delta in handle.generate_stream(Capability.COMPLETION, request):
                chunk = {
                    "id": cid,
                    "object": "text_completion",
                    "created": created,
                    "model": handle.name,
                    "choices": [
                        {
                            "index": index,
                            "text": delta.text,
                            "logprobs": translate.completion_logprobs(delta.logprobs, offset),
                            "finish_reason": delta.finish_reason,
                        }
                    ],
                }
                offset += len(delta.text)
                if include_usage:
                    chunk["usage"] = None
                yield chunk
                counted = _count(delta, counted)
        if include_usage:
            yield {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": handle.name,
                "choices": [],
                "usage": translate.usage(*counted),
            }

    @post("/embeddings", status_code=200)
    async def embeddings(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> dict[str, Any]:
        req = translate.decode(await request.body(), types.EmbeddingRequest)
        handle = resolve(registry, req.model, route_model)
        texts = [req.input] if isinstance(req.input, str) else req.input
        for i, text in enumerate(texts):
            if not text:
                raise InvalidInput("input must not contain empty strings", f"input[{i}]")
        result = await handle.embed(texts)
        return translate.embeddings(handle.name, result, req.encoding_format, req.dimensions)

    @post("/images/generations", status_code=200)
    async def images(
        self, request: Request, registry: Registry, images: ImageStore, route_model: str | None
    ) -> dict[str, Any]:
        req = translate.decode(await request.body(), types.ImageGenerationRequest)
        handle = resolve(registry, req.model, route_model)
        handle.require(Capability.IMAGE)
        settings = {
            "size": req.size,
            "n": req.n or 1,
            "negative_prompt": req.negative_prompt,
            "steps": req.steps,
            "seed": req.seed,
            "guidance_scale": req.guidance_scale,
        }
        given = {k: v for k, v in settings.items() if v is not None}
        image = image_request(req.prompt, given, handle.spec.options)
        generated = await handle.call(Capability.IMAGE, lambda rt: rt.generate_images(image))
        base = str(request.base_url).rstrip("/")
        data = [
            {"b64_json": translate.b64(img.png)}
            if req.response_format == "b64_json"
            else {"url": f"{base}/v1/images/files/{images.put(img.png)}.png"}
            for img in generated
        ]
        return {"created": int(time.time()), "data": data, "seed": [img.seed for img in generated]}


def _count(delta: TextDelta, counted: tuple[int, int, int]) -> tuple[int, int, int]:
    """Running usage over streamed choices, (prompt, completion, cached): the prompt counts
    once, completions add up, and the cached prompt tokens are the first choice's."""
    if delta.usage is None:
        return counted
    prompt, completion, cached = counted
    first = prompt == 0  # no choice has ended yet (a prompt has at least one token)
    return delta.usage[0], completion + delta.usage[1], delta.cached_tokens if first else cached


@get("/v1/images/files/{name:str}", exception_handlers=OPENAI_HANDLERS)
async def image_file(images: ImageStore, name: str) -> Response[bytes]:
    """A generated image, while it lasts."""
    png = images.get(name.removesuffix(".png"))
    if png is None:
        raise NotFound(f"image {name!r} does not exist or has expired")
    return Response(png, media_type="image/png")


def no_route_model() -> None:
    return None


def sub_route_model(model: str) -> str:
    return model


def openai_routes(*extra: type[Controller]) -> list[Any]:
    """The OpenAI routes, and `extra` controllers' beside them, at /v1 and KServe's /openai/v1,
    and under each model's infer paths."""
    # One class: two controllers sharing a path (GET and POST /chat/completions) would each
    # add their own OPTIONS handler to it.
    controllers = [type("OpenAIRoutes", (OpenAIController, *extra), {})]
    whole = {"route_model": Provide(no_route_model, sync_to_thread=False)}
    sub = {"route_model": Provide(sub_route_model, sync_to_thread=False)}
    return [
        *mounted(controllers, "/v1", dependencies=whole, exception_handlers=OPENAI_HANDLERS),
        *mounted(controllers, "/openai/v1", dependencies=whole, exception_handlers=OPENAI_HANDLERS),
        image_file,
        *(
            route
            for kind in ("infer", "infer_stream")
            for route in mounted(
                controllers,
                f"/v2/models/{{model:str}}/{kind}",
                dependencies=sub,
                exception_handlers=OPENAI_HANDLERS,
            )
        ),
    ]


def root_routes(*controllers: type[Controller]) -> list[type[Controller]]:
    """Routes vLLM also serves outside /v1 (/rerank, /tokenize, /detokenize), in OpenAI's shape."""
    return mounted(
        controllers,
        dependencies={"route_model": Provide(no_route_model, sync_to_thread=False)},
        exception_handlers=OPENAI_HANDLERS,
    )
