"""The one table of errors to HTTP statuses, the protocols' error shapes, and which protocol a
path speaks."""

from __future__ import annotations

import logging

import pytest
from litestar.exceptions import NotFoundException, ValidationException
from localoip.app.core.errors import InvalidInput, ModelNotReady, QueueFull
from localoip.app.http.errors import (
    classify,
    oip_body,
    ollama_body,
    ollama_status,
    openai_body,
    problem_of,
    protocol_of,
    status_of,
)
from localoip.runtimes.capabilities import InputError, UpstreamError


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidInput("bad"), 400),
        (ModelNotReady("loading"), 503),
        (QueueFull("full", retry_after=2), 429),
        (InputError("bad token", "prompt"), 400),
        (UpstreamError("upstream says no", 418), 418),
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
    ("path", "protocol"),
    [
        ("/v1/chat/completions", "openai"),
        ("/openai/v1/models", "openai"),
        ("/rerank", "openai"),
        ("/tokenize", "openai"),
        ("/v2/models/m/infer/chat/completions", "openai"),
        ("/v2/models/m/infer", "oip"),
        ("/v2/models/m/generate", "oip"),
        ("/v2/health/ready", "oip"),
        ("/api/chat", "ollama"),
        ("/api/nowhere", "ollama"),
        ("/nowhere", "oip"),
    ],
)
def test_which_protocol_a_path_speaks(path, protocol):
    assert protocol_of(path) == protocol


def test_ollama_errors_are_its_error_object_and_a_full_queue_is_its_503():
    problem = problem_of(QueueFull("full", retry_after=2))
    assert ollama_body(problem) == {"error": "full"}
    assert (ollama_status(problem), ollama_status(problem_of(InvalidInput("bad")))) == (503, 400)
