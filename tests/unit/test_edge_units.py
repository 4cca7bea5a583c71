"""The edge's rules as pure functions (Host names, Origins, media types, decoding, sessions), and
the media types each route of create_app declares, in process."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from localoip.app.core.config import ALLOWED_HOSTS_ENV, ConfigError, load_settings
from localoip.app.core.errors import InvalidInput
from localoip.app.http.edge import session
from localoip.app.http.edge.compression import Inflater, check_content_coding
from localoip.app.http.edge.hosts import HostPolicy, exposure_warning, host_name
from localoip.app.http.edge.media_types import (
    BINARY,
    FORM,
    JSON,
    MULTIPART,
    accepted,
    body_types,
    check_media_type,
)
from localoip.app.http.edge.origins import check_origin, origin_allowed
from localoip.app.http.edge.refusals import BodyTooLarge, Forbidden, UnsupportedMediaType
from localoip.app.http.edge.session import Sessions
from localoip.app.server import create_app

LOCAL = HostPolicy.of("127.0.0.1", [])


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:9000",
        "LOCALHOST:9000",
        "LocalHost.",
        "localhost.:9000",
        "127.0.0.1",
        "127.0.0.1:9000",
        "127.0.0.2:9000",
        "[::1]",
        "[::1]:9000",
        "[0:0:0:0:0:0:0:1]:9000",
        "[::ffff:127.0.0.1]:9000",
        "app.localhost:9000",
        "A.B.LOCALHOST",
    ],
)
def test_loopback_hosts_are_answered(host):
    assert LOCAL.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "evil.example",
        "evil.example:9000",
        "EVIL.example.:9000",
        "localhost.evil.example",
        "evillocalhost",
        "127.0.0.1.evil.example",
        "::1",  # an IPv6 address must be bracketed
        "[::1",
        "[::1]x",
        "[::1]:port",
        "[evil.example]",
        "localhost:9000:1",
        "localhost:",
        "user@localhost",
        "local host",
        "10.0.0.5:9000",  # not the bound address
        "[fe80::1]:9000",
    ],
)
def test_other_hosts_are_refused(host):
    assert not LOCAL.allows(host)


def test_host_names_are_normalised():
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("[0:0:0:0:0:0:0:1]") == "::1"
    assert host_name("example.com:http") is None


def test_allowed_hosts_add_names_and_a_star_opens_the_check():
    policy = HostPolicy.of("127.0.0.1", ["mybox.lan", "Proxy.Example."])
    assert policy.allows("mybox.lan:9000") and policy.allows("proxy.example")
    assert policy.allows("MYBOX.LAN.") and not policy.allows("other.lan")
    assert HostPolicy.of("127.0.0.1", ["*"]).allows("anything.example")
    assert HostPolicy.of("127.0.0.1", ["*"]).allows(None)


def test_the_bound_address_is_answered():
    policy = HostPolicy.of("192.168.1.5", [])
    assert policy.allows("192.168.1.5:9000") and not policy.allows("192.168.1.6:9000")
    assert HostPolicy.of("mybox.lan", []).allows("mybox.lan:9000")
    assert HostPolicy.of("[fd00::5]", []).allows("[fd00::5]:9000")
    # Bound to every interface: any address literal, which no DNS name can rebind, but no name.
    wildcard = HostPolicy.of("0.0.0.0", [])
    assert wildcard.allows("10.1.2.3:9000") and wildcard.allows("[fd00::5]:9000")
    assert not wildcard.allows("evil.example:9000")


def test_a_non_loopback_bind_is_announced_with_the_key_state():
    assert exposure_warning("127.0.0.1", False) is None
    assert exposure_warning("localhost", False) is None
    assert exposure_warning("::1", False) is None
    open_warning = exposure_warning("0.0.0.0", False)
    assert "reachable from the network" in open_warning and "no API key is set" in open_warning
    assert "requests need the API key" in exposure_warning("192.168.1.5", True)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:3000", True),
        ("http://127.0.0.1:9000", True),
        ("http://[::1]:9000", True),
        ("https://app.localhost", True),
        ("http://mybox.lan:9000", True),  # the page's own origin (same as Host)
        ("http://playground.test", True),  # listed in cors_origins
        ("http://evil.example", False),
        ("http://localhost.evil.example", False),
        ("null", False),
        ("file://", False),
        ("http://mybox.lan:9001", False),
    ],
)
def test_origins_that_may_change_state(origin, allowed):
    assert origin_allowed(origin, "mybox.lan:9000", ["http://playground.test"]) is allowed


def test_foreign_origins_are_refused_only_on_state_changing_requests():
    check_origin("GET", "http://evil.example", "localhost:9000", [])
    check_origin("POST", None, "localhost:9000", [])
    with pytest.raises(Forbidden):
        check_origin("POST", "http://evil.example", "localhost:9000", [])
    with pytest.raises(Forbidden):
        check_origin("DELETE", "null", "localhost:9000", [])
    check_origin("POST", "http://evil.example", "localhost:9000", ["*"])


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """create_app with no models, in this process: what each route declares it takes."""
    folder = tmp_path_factory.mktemp("edge")
    config = folder / "models.toml"
    config.write_text(f"[server]\nstore_path = {str(folder / 'store.db')!r}\n")
    with TestClient(create_app(load_settings(config)), base_url="http://127.0.0.1:9000") as c:
        yield c


@pytest.mark.parametrize(
    ("path", "types"),
    [
        ("/v1/chat/completions", (JSON,)),
        ("/openai/v1/embeddings", (JSON,)),
        ("/v2/models/m/infer", (JSON, BINARY)),
        ("/v2/models/m/versions/1/infer", (JSON, BINARY)),
        ("/v2/models/m/infer_stream", (JSON, BINARY)),
        ("/v2/models/m/infer/chat/completions", (JSON,)),
        ("/v2/models/m/generate", (JSON,)),
        ("/v2/repository/index", (JSON,)),
        ("/ui/chat/", (FORM, MULTIPART)),  # the page attaches images as multipart
        ("/v1/audio/transcriptions", (MULTIPART,)),  # an upload, as OpenAI's API takes it
        ("/openai/v1/audio/translations", (MULTIPART,)),
        ("/v2/models/m/infer/audio/transcriptions", (MULTIPART,)),
        ("/signin", (FORM,)),
    ],
)
def test_each_route_takes_the_media_types_it_declares(app_client, path, types):
    for media in (JSON, BINARY, FORM, "text/plain", MULTIPART):
        headers = {"content-type": media, "hx-request": "true"}
        response = app_client.post(path, content=b"{}", headers=headers)
        assert (response.status_code == 415) == (media not in types), (media, response.text)


def test_a_route_takes_json_unless_it_declares_otherwise():
    assert accepted({}) == (JSON,)
    assert accepted({"other": 1, **body_types(JSON, BINARY)}) == (JSON, BINARY)


def test_media_type_parameters_and_casing_are_fine_and_no_type_is_accepted():
    check_media_type((JSON,), "application/json; charset=utf-8")
    check_media_type((JSON,), "Application/JSON")
    check_media_type((JSON,), None)
    check_media_type((JSON,), "")
    check_media_type((JSON, BINARY), "application/octet-stream")


@pytest.mark.parametrize(
    ("types", "content_type"),
    [
        ((JSON,), "text/plain"),
        ((JSON,), "text/plain;charset=UTF-8"),
        ((JSON,), "application/x-www-form-urlencoded"),
        ((JSON,), "multipart/form-data; boundary=x"),
        ((JSON,), "application/octet-stream"),
        ((JSON, BINARY), "text/plain"),
        ((FORM,), "text/plain"),
        ((FORM,), "multipart/form-data; boundary=x"),
    ],
)
def test_bodies_a_route_does_not_declare_are_refused(types, content_type):
    with pytest.raises(UnsupportedMediaType):
        check_media_type(types, content_type)


def test_unknown_content_codings_are_refused():
    for fine in (None, "", "identity", "gzip", "GZIP", "x-gzip", "deflate"):
        check_content_coding(fine)
    for unknown in ("br", "zstd", "compress", "gzip, deflate"):
        with pytest.raises(UnsupportedMediaType):
            check_content_coding(unknown)


def inflate(coding: str, data: bytes, limit: int = 1 << 20, split: int = 7) -> bytes:
    inflater = Inflater(coding, limit)
    out = b""
    for start in range(0, len(data), split):
        inflater.feed(data[start : start + split])
        while piece := inflater.piece():
            out += piece
    inflater.finish()
    return out


def test_gzip_and_both_deflate_forms_decode():
    body = b'{"model": "m", "input": "' + b"x" * 5000 + b'"}'
    assert inflate("gzip", gzip.compress(body)) == body
    assert inflate("deflate", zlib.compress(body)) == body
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert inflate("deflate", raw.compress(body) + raw.flush()) == body
    assert inflate("gzip", gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_a_zip_bomb_stops_at_the_limit_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
    inflater = Inflater("gzip", 1 << 20)
    inflater.feed(bomb)
    with pytest.raises(BodyTooLarge, match="once decoded"):
        while inflater.piece():
            pass
    assert inflater.decoded <= (1 << 20) + 64 * 1024


def test_corrupt_and_truncated_bodies_are_bad_input():
    with pytest.raises(InvalidInput, match="not valid gzip"):
        inflate("gzip", b"not gzip at all")
    with pytest.raises(InvalidInput, match="ends too early"):
        inflate("gzip", gzip.compress(b"x" * 1000)[:-12])


def test_sessions_are_signed_expire_and_end():
    sessions = Sessions("s3cret", 3600)
    token = sessions.issue()
    assert sessions.valid(token)
    expires, nonce, signature = token.split(".")
    assert not sessions.valid(f"{int(expires) + 10}.{nonce}.{signature}")  # a longer life
    assert not sessions.valid(f"{expires}.{nonce}.{'0' * len(signature)}")
    assert not sessions.valid(Sessions("s3cret", 3600).issue())  # another server's secret
    assert not sessions.valid(None) and not sessions.valid("") and not sessions.valid("a.b")
    short = Sessions("s3cret", 1)
    old = short.issue()
    time.sleep(1.1)
    assert not short.valid(old)
    sessions.end(token)
    assert not sessions.valid(token) and sessions.valid(sessions.issue())


def test_the_key_compare_and_the_growing_delay(monkeypatch):
    sessions = Sessions("s3cret", 3600)
    assert sessions.key_matches("s3cret")
    assert not sessions.key_matches("s3cre") and not sessions.key_matches("s3cret ")
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(session.asyncio, "sleep", record)
    for _ in range(7):
        asyncio.run(sessions.wrong_key("10.0.0.1"))
    sessions.right_key("10.0.0.1")
    asyncio.run(sessions.wrong_key("10.0.0.1"))
    assert delays == [0.5, 1, 2, 4, 8, 16, 16, 0.5]


def test_allowed_hosts_come_from_the_file_or_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "models.toml"
    config.write_text('[server]\nallowed_hosts = ["mybox.lan", "*"]\n')
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
    assert load_settings(config).server.allowed_hosts == ["mybox.lan", "*"]
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "a.example, b.example")
    assert load_settings(config).server.allowed_hosts == ["a.example", "b.example"]
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "http://a.example/")
    with pytest.raises(ConfigError, match=ALLOWED_HOSTS_ENV):
        load_settings(config)
    monkeypatch.delenv(ALLOWED_HOSTS_ENV)
    config.write_text('[server]\nallowed_hosts = ["a b"]\n')
    with pytest.raises(ConfigError, match=r"\[server\]: allowed_hosts: 'a b'"):
        load_settings(config)
