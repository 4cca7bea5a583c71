"""A generation answered as Ollama answers /api/chat and /api/generate: whole, or as NDJSON
pieces ending in an object with `done_reason` and the metrics; a request with nothing to
generate loads (or unloads) the model; `keep_alive` says how long it stays loaded after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Response
from localoip.app.api.ollama.common import Clock
from localoip.app.core.registry import ModelHandle
from localoip.app.http.errors import ollama_body
from localoip.app.http.ndjson import ndjson
from localoip.app.http.sse import primed
from localoip.app.http.truncation import Watch, truncation_headers
from localoip.runtimes.capabilities import (
    Capability,
    ChatRequest,
    CompletionRequest,
    TextResult,
    TokenLogprob,
    ToolCall,
)
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.ollama.requests import KeepAlive, keep_alive_seconds
from localoip.runtimes.wire.ollama.responses import ChatResponse, GenerateResponse, done_reason

Piece = ChatResponse | GenerateResponse
Logprobs = tuple[TokenLogprob, ...] | None
Make = Callable[[str, str, tuple[ToolCall, ...], Logprobs], Piece]
"""Makes a route's object, not done yet, from text, reasoning, whole calls and the tokens'
logprobs (None: not asked for)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One generation of a model for an Ollama route: what to ask, how its objects look,
    and whether to unload the model after it (`keep_alive: 0`)."""

    handle: ModelHandle
    capability: Capability
    request: ChatRequest | CompletionRequest
    make: Make
    unload: bool

    async def answer(self, streams: bool) -> Any:
        """The whole reply as one object, or its NDJSON stream (a status for an error that
        comes before the first piece, a last `{"error"}` line after it)."""
        watch = Watch()
        if streams:
            return ndjson(await primed(self._pieces(watch)), ollama_body, watch.headers)
        fold, clock = Fold(), Clock.of(self.handle)
        async with aclosing(self.handle.generate_stream(self.capability, self.request)) as deltas:
            async for delta in deltas:
                if delta.text or delta.reasoning:
                    clock.token()
                fold.add(delta)
        result = fold.result()
        last = self._last(
            result.text, result.reasoning, _calls(fold, result), result.logprobs, result, clock
        )
        await self._settle()
        return Response(last, headers=truncation_headers(result.truncated))

    async def _pieces(self, watch: Watch) -> AsyncIterator[Piece]:
        """The reply's NDJSON objects; `watch` sees its deltas (the prompt's truncation)."""
        fold, clock = Fold(), Clock.of(self.handle)
        stream = watch.watched(self.handle.generate_stream(self.capability, self.request))
        async with aclosing(stream) as deltas:
            async for delta in deltas:
                fold.add(delta)
                if delta.text or delta.reasoning:
                    clock.token()
                if delta.text or delta.reasoning or delta.logprobs:
                    yield self.make(delta.text, delta.reasoning, (), delta.logprobs)
        result = fold.result()
        calls = _calls(fold, result)
        if calls:  # as Ollama sends them: whole, in a piece of their own
            yield self.make("", "", calls, None)
        yield self._last("", "", (), None, result, clock)
        await self._settle()

    def _last(
        self,
        text: str,
        reasoning: str,
        calls: tuple[ToolCall, ...],
        logprobs: Logprobs,
        result: TextResult,
        clock: Clock,
    ) -> Piece:
        """The done object: done_reason and the metrics, with what is left of the reply."""
        metrics = clock.metrics(self.handle, result.prompt_tokens, result.completion_tokens)
        return msgspec.structs.replace(
            self.make(text, reasoning, calls, logprobs),
            done=True,
            done_reason=done_reason(result.finish_reason),
            **msgspec.structs.asdict(metrics),
        )

    async def _settle(self) -> None:
        if self.unload:
            await self.handle.sleep()


def _calls(fold: Fold, result: TextResult) -> tuple[ToolCall, ...]:
    """The reply's whole calls: a local runtime's, or those an upstream streamed as pieces."""
    return result.tool_calls or fold.pieced_calls()


def apply_keep_alive(handle: ModelHandle, value: KeepAlive) -> bool:
    """Apply a request's `keep_alive`, as Ollama does: how long the model stays loaded once
    idle after it (seconds or a duration; negative: until unloaded; absent: the model's own
    keep_alive of models.toml). True for 0: unload the model once the reply is out (and the
    idle timer unloads it too when the client hangs up first). InputError for a value that
    is no duration."""
    seconds = keep_alive_seconds(value)
    handle.keep_alive(seconds)
    return seconds == 0


async def load_or_unload(handle: ModelHandle, unload: bool, make: Make) -> Piece:
    """What Ollama answers a request with nothing to generate: the model loaded (done_reason
    "load"), or with keep_alive 0 unloaded ("unload"). Raises ModelCrashed or ModelNotReady
    (503) when it cannot load."""
    if unload:
        await handle.sleep()
    else:
        await handle.loaded()
    return msgspec.structs.replace(
        make("", "", (), None), done=True, done_reason="unload" if unload else "load"
    )
