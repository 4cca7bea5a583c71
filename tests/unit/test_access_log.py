"""The access log, written off the event loop: the same lines uvicorn writes itself."""

from __future__ import annotations

import io
import logging

import uvicorn
from localoip.app.cli.main import access_log_off_the_loop


def _access_line(status: int) -> None:
    """Log as uvicorn's HTTP protocol does when a response starts."""
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/v1/chat/completions", "1.1", status
    )


def _captured() -> io.StringIO:
    """uvicorn's own access handler and formatter, writing to a buffer."""
    uvicorn.Config(app=lambda *_: None, log_level="info")  # sets up uvicorn's loggers
    out = io.StringIO()
    for handler in logging.getLogger("uvicorn.access").handlers:
        handler.setStream(out)
    return out


def test_access_lines_through_the_queue_equal_uvicorns_own():
    direct = _captured()
    _access_line(200)
    _access_line(429)

    queued = _captured()
    listener = access_log_off_the_loop()
    try:
        _access_line(200)
        _access_line(429)
    finally:
        listener.stop()  # flushes what was queued

    assert direct.getvalue().splitlines() == [  # no colours: the stream is not a terminal
        'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
        'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 429 Too Many Requests',
    ]
    assert queued.getvalue() == direct.getvalue()
