"""OIP v2 REST routes: HTTP in, DataPlane calls, OIP-shaped responses out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from localoip.app.api.oip.codecs import (
    HEADER_LENGTH,
    binary_outputs,
    decode_request,
    encode_response,
)
from localoip.app.api.oip.dataplane import MODEL_VERSION, DataPlane
from localoip.app.api.oip.types import (
    GenerateRequest,
    GenerateResponse,
    InferenceResponse,
    ModelMetadata,
    RepositoryIndexRequest,
    RepositoryModel,
    ServerMetadata,
)
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import Registry
from localoip.app.http.edge.media_types import BINARY, JSON, body_types
from localoip.app.http.errors import OIP_HANDLERS, oip_body
from localoip.app.http.sse import EventStream, guarded, primed

S = TypeVar("S")
MODEL = "/v2/models/{model_name:str}"
VERSION = "/v2/models/{model_name:str}/versions/{model_version:str}"
TENSOR_BODIES = body_types(JSON, BINARY)  # JSON, or JSON and the binary tensor extension


def decode_body(body: bytes, into: type[S], default: S | None = None) -> S:
    """Decode a JSON body whatever its Content-Type; an empty body gives `default` if allowed."""
    if not body.strip() and default is not None:
        return default
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed request body: {exc}") from None


def _tensor_headers(request: Request) -> dict[str, str]:
    """The headers that frame an infer body (its type, the binary extension's JSON length)."""
    wanted = ("content-type", HEADER_LENGTH)
    return {k: request.headers[k] for k in wanted if k in request.headers}


class HealthController(Controller):
    path = "/v2/health"
    exception_handlers = OIP_HANDLERS

    @get("/live")
    async def live(self) -> dict[str, bool]:
        return {"live": True}

    @get("/ready")
    async def ready(self, dataplane: DataPlane) -> Response[dict[str, bool]]:
        ready = dataplane.ready()
        return Response({"ready": ready}, status_code=200 if ready else 503)


class OipController(Controller):
    """Server and model metadata, readiness, infer, and the generate extension."""

    exception_handlers = OIP_HANDLERS

    @get("/v2")
    async def server_metadata(self, dataplane: DataPlane) -> ServerMetadata:
        return dataplane.server_metadata()

    @get([MODEL, VERSION])
    async def model_metadata(
        self, dataplane: DataPlane, model_name: str, model_version: str | None = None
    ) -> ModelMetadata | dict[str, Any]:
        relayed = dataplane.relayed(model_name)
        if relayed is not None:
            return await dataplane.relayed_metadata(relayed, model_version)
        return dataplane.model_metadata(model_name, model_version)

    @get([f"{MODEL}/ready", f"{VERSION}/ready"])
    async def model_ready(
        self, dataplane: DataPlane, model_name: str, model_version: str = MODEL_VERSION
    ) -> Response[dict[str, Any]]:
        relayed = dataplane.relayed(model_name)  # its versions are the upstream's
        handle = relayed or dataplane.model(model_name, model_version)
        ready = handle.servable  # an idle model loads again on demand
        return Response({"name": model_name, "ready": ready}, status_code=200 if ready else 503)

    @post([f"{MODEL}/infer", f"{VERSION}/infer"], status_code=200, opt=TENSOR_BODIES)
    async def infer(
        self,
        request: Request,
        dataplane: DataPlane,
        model_name: str,
        model_version: str | None = None,
    ) -> Response[bytes]:
        body = await request.body()
        header_length = request.headers.get(HEADER_LENGTH)
        relayed = dataplane.relayed(model_name)
        if relayed is not None:
            content, headers = await dataplane.relay(
                relayed, model_version, body, _tensor_headers(request)
            )
            media = headers.pop("content-type", "application/json")
            return Response(content, status_code=200, headers=headers, media_type=media)
        infer_request, tensors = decode_request(body, header_length)
        outputs = await dataplane.infer(
            model_name, model_version, tensors, infer_request.parameters
        )
        chosen, binary = binary_outputs(infer_request, outputs)
        response = InferenceResponse(
            model_name=model_name, model_version=MODEL_VERSION, id=infer_request.id, outputs=[]
        )
        content, headers = encode_response(response, chosen, binary)
        return Response(
            content, status_code=200, headers=headers, media_type=headers["content-type"]
        )

    @post([f"{MODEL}/infer_stream", f"{VERSION}/infer_stream"], status_code=200, opt=TENSOR_BODIES)
    async def infer_stream(
        self,
        request: Request,
        dataplane: DataPlane,
        model_name: str,
        model_version: str | None = None,
    ) -> EventStream:
        """MLServer's streaming infer: one InferenceResponse per SSE event (JSON tensors)."""
        body = await request.body()
        relayed = dataplane.relayed(model_name)
        if relayed is not None:
            relay = dataplane.relay_stream(relayed, model_version, body, _tensor_headers(request))
            return EventStream(guarded(await primed(relay), oip_body))
        infer_request, tensors = decode_request(body, request.headers.get(HEADER_LENGTH))
        parts = await primed(
            await dataplane.infer_stream(
                model_name, model_version, tensors, infer_request.parameters
            )
        )

        async def events() -> AsyncIterator[str]:
            async for outputs in parts:
                response = InferenceResponse(
                    model_name=model_name,
                    model_version=MODEL_VERSION,
                    id=infer_request.id,
                    outputs=[],
                )
                yield encode_response(response, outputs, set())[0].decode()

        return EventStream(guarded(events(), oip_body))

    @post([f"{MODEL}/generate", f"{VERSION}/generate"], status_code=200)
    async def generate(
        self,
        request: Request,
        dataplane: DataPlane,
        model_name: str,
        model_version: str = MODEL_VERSION,
    ) -> GenerateResponse:
        body = decode_body(await request.body(), GenerateRequest)
        return await dataplane.generate(model_name, model_version, body)

    @post([f"{MODEL}/generate_stream", f"{VERSION}/generate_stream"], status_code=200)
    async def generate_stream(
        self,
        request: Request,
        dataplane: DataPlane,
        model_name: str,
        model_version: str = MODEL_VERSION,
    ) -> EventStream:
        body = decode_body(await request.body(), GenerateRequest)
        deltas = await primed(dataplane.generate_stream(model_name, model_version, body))

        async def events() -> AsyncIterator[str]:
            async for delta in deltas:
                event: dict[str, Any] = {
                    "model_name": model_name,
                    "model_version": MODEL_VERSION,
                    "text_output": delta.text,
                }
                if delta.finish_reason:
                    event["finish_reason"] = delta.finish_reason
                yield msgspec.json.encode(event).decode()

        return EventStream(guarded(events(), oip_body))


class RepositoryController(Controller):
    """The model repository extension."""

    path = "/v2/repository"
    exception_handlers = OIP_HANDLERS

    @post("/index", status_code=200)
    async def index(self, request: Request, dataplane: DataPlane) -> list[RepositoryModel]:
        body = decode_body(await request.body(), RepositoryIndexRequest, RepositoryIndexRequest())
        return dataplane.repository_index(body.ready)

    @post("/models/{model_name:str}/load", status_code=200)
    async def load(self, registry: Registry, model_name: str) -> None:
        await registry.load(model_name)

    @post("/models/{model_name:str}/unload", status_code=200)
    async def unload(self, registry: Registry, model_name: str) -> None:
        await registry.unload(model_name)
