"""The one table of errors to HTTP statuses, the four protocols' error shapes, and which
protocol a request speaks."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import get_args

import pytest
from litestar.exceptions import NotFoundException, ValidationException
from localoip.app.core.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    QueueFull,
    Unauthorized,
)
from localoip.app.http.edge.refusals import BodyTooLarge, Forbidden
from localoip.app.http.errors import (
    HANDLERS,
    Protocol,
    anthropic_body,
    classify,
    oip_body,
    ollama_body,
    ollama_status,
    openai_body,
    problem_of,
    protocol_of,
    status_of,
)
from localoip.app.http.sse import guarded
from localoip.runtimes.capabilities import InputError, UpstreamError
from localoip.runtimes.sources.errors import SourceError


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidInput("bad"), 400),
        (ModelNotReady("loading"), 503),
        (QueueFull("full", retry_after=2), 429),
        (InputError("bad token", "prompt"), 400),
        (UpstreamError("upstream says no", 418), 418),
        (SourceError("no such repository"), 400),
        (NotFoundException(), 404),
        (ValidationException("bad"), 400),
        (RuntimeError("boom"), 500),
    ],
)
def test_each_kind_of_error_has_its_status(exc, status):
    assert status_of(exc) == status == problem_of(exc).status


def test_a_full_queue_says_when_to_retry_in_both_shapes():
    problem = problem_of(QueueFull("the queue is full", retry_after=3))
    assert problem.headers == {"Retry-After": "3"}
    assert oip_body(problem) == {"error": "the queue is full"}
    assert openai_body(problem)["error"] == {
        "message": "the queue is full",
        "type": "rate_limit_error",
        "param": None,
        "code": "queue_full",
    }


def test_a_runtimes_input_error_keeps_its_field_and_code():
    problem = problem_of(InputError("ids out of range", "prompt", "bad_token"))
    assert (problem.status, problem.param, problem.code) == (400, "prompt", "bad_token")


def test_only_an_error_no_rule_knows_is_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="localoip"):
        classify(InvalidInput("bad"))
        assert not caplog.records
        problem = classify(RuntimeError("boom"))
    assert problem.message == "internal error: RuntimeError: boom"
    assert [r.exc_info[0] for r in caplog.records] == [RuntimeError]


@pytest.mark.parametrize(
    ("path", "headers", "protocol"),
    [
        ("/v1/chat/completions", {}, "openai"),
        ("/openai/v1/models", {}, "openai"),
        ("/rerank", {}, "openai"),
        ("/tokenize", {}, "openai"),
        ("/v2/models/m/infer/chat/completions", {}, "openai"),
        ("/v2/models/m/infer", {}, "oip"),
        ("/v2/models/m/generate", {}, "oip"),
        ("/v2/health/ready", {}, "oip"),
        ("/nowhere", {}, "oip"),
        ("/api/chat", {}, "ollama"),
        ("/api/nowhere", {}, "ollama"),
        ("/api/chat", {"anthropic-version": "2023-06-01"}, "ollama"),
        ("/v1/messages", {}, "anthropic"),
        ("/v1/messages/count_tokens", {}, "anthropic"),
        ("/anthropic/v1/models", {}, "anthropic"),
        ("/v1/models", {"anthropic-version": "2023-06-01"}, "anthropic"),
        ("/v1/models", {}, "openai"),
        ("/openai/v1/models", {"anthropic-version": "2023-06-01"}, "openai"),
    ],
)
def test_which_protocol_a_request_speaks(path, headers, protocol):
    assert protocol_of(path, headers) == protocol


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (InvalidInput("bad"), "invalid_request_error"),
        (Unauthorized("no key"), "authentication_error"),
        (Forbidden("foreign host"), "permission_error"),
        (ModelNotFound("no such model"), "not_found_error"),
        (BodyTooLarge("too big"), "request_too_large"),
        (QueueFull("full", retry_after=1), "rate_limit_error"),
        (RuntimeError("boom"), "api_error"),
        (ModelNotReady("loading"), "overloaded_error"),
        (UpstreamError("teapot", 418), "invalid_request_error"),
    ],
)
def test_anthropic_s_shape_names_the_error_type_of_each_status(exc, kind):
    body = anthropic_body(problem_of(exc))
    assert (body.type, body.error.type, body.error.message) == (
        "error",
        kind,
        str(problem_of(exc).message),
    )


def test_anthropic_s_message_names_the_field_it_has_no_place_for():
    body = anthropic_body(problem_of(InvalidInput("must be >= 1", "max_tokens")))
    assert body.error.message == "max_tokens: must be >= 1"


def test_a_stream_that_fails_midway_ends_with_an_error_event_in_its_protocol_s_shape():
    async def frames():
        yield "first"
        raise ModelNotReady("the model crashed")

    async def read(error_event: str | None) -> list:
        return [frame async for frame in guarded(frames(), anthropic_body, error_event)]

    first, error = asyncio.run(read("error"))
    assert first == "first" and error.event == "error"
    assert json.loads(error.data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "the model crashed"},
    }
    assert json.loads(asyncio.run(read(None))[1])["error"]["type"] == "overloaded_error"


def test_every_protocol_has_its_exception_handler():
    assert set(HANDLERS) == set(get_args(Protocol))


def test_ollama_errors_are_its_error_object_and_a_full_queue_is_its_503():
    problem = problem_of(QueueFull("full", retry_after=2))
    assert ollama_body(problem) == {"error": "full"}
    assert (ollama_status(problem), ollama_status(problem_of(InvalidInput("bad")))) == (503, 400)
