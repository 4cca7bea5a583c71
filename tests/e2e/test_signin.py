"""A server with an API key, bound beyond loopback: the key on every route (bearer or the
playground's session cookie), stored data behind it, and signing in with Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
from localoip.app.playground import snippets
from openai import OpenAI
from support.browser import send, wait_for_reply
from support.configs import tiny_chat
from support.servers import Server, Servers

KEY = "s3cret-key"
HI = [{"role": "user", "content": "hi"}]
CONFIG = """[server]
cors_origins = ["http://playground.test"]
allowed_hosts = ["mybox.test"]
session_hours = 0.5

"""


@pytest.fixture(scope="module")
def keyed(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    config = CONFIG + tiny_chat(tiny_dir)
    args = ("--host", "0.0.0.0")
    with servers.shared(config, args=args, env={"LOCALOIP_API_KEY": KEY}) as server:
        yield server


@pytest.fixture
def anyone(keyed: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed.url, timeout=60) as client:
        yield client


@contextmanager
def signed_in(keyed: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed.url, timeout=60) as client:
        response = client.post("/signin", data={"key": KEY})
        assert response.status_code == 303 and response.headers["location"] == "/"
        yield client


def test_binding_beyond_loopback_is_announced_with_the_key_state(keyed):
    logs = keyed.logs()
    assert "listening on 0.0.0.0: the API is reachable from the network" in logs
    assert "requests need the API key" in logs


def test_allowed_hosts_and_the_machine_s_addresses_are_answered(keyed, anyone):
    bearer = {"Authorization": f"Bearer {KEY}"}
    for host in ("mybox.test", f"MYBOX.TEST.:{keyed.port}", "10.1.2.3:9000", "[fd00::5]"):
        assert anyone.get("/v1/models", headers={**bearer, "Host": host}).status_code == 200
    refused = anyone.get("/v1/models", headers={**bearer, "Host": "evil.example"})
    assert refused.status_code == 403


def test_stored_conversations_need_the_key_by_bearer_or_cookie(keyed, anyone):
    with_key = OpenAI(base_url=f"{keyed.url}/v1", api_key=KEY, max_retries=0)
    made = with_key.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=2, store=True
    )
    without = OpenAI(base_url=f"{keyed.url}/v1", api_key="wrong", max_retries=0)
    for call in (
        lambda: without.chat.completions.list(),
        lambda: without.chat.completions.retrieve(made.id),
        lambda: without.chat.completions.delete(made.id),
        lambda: without.responses.retrieve("resp_x"),
    ):
        with pytest.raises(openai.AuthenticationError):
            call()
    assert anyone.get("/v1/chat/completions").status_code == 401
    assert made.id in [c.id for c in with_key.chat.completions.list()]
    with signed_in(keyed) as browser_like:
        listed = browser_like.get("/v1/chat/completions").json()
        assert made.id in [c["id"] for c in listed["data"]]
        assert browser_like.delete(f"/v1/chat/completions/{made.id}").json()["deleted"]


def test_the_page_sends_a_signed_out_browser_to_sign_in(anyone):
    page = anyone.get("/")
    assert page.status_code == 302 and page.headers["location"] == "/signin"
    form = anyone.get("/signin")
    assert form.status_code == 200 and 'name="key"' in form.text
    assert anyone.get("/static/playground.css").status_code == 200
    assert anyone.get("/v2/health/live").json() == {"live": True}
    status = anyone.get("/ui/status", headers={"HX-Request": "true"})
    assert status.status_code == 401 and "sign in again" in status.text


def test_a_wrong_key_is_told_and_slowed(anyone):
    started = time.monotonic()
    first = anyone.post("/signin", data={"key": "nope"})
    assert first.status_code == 401 and "That is not the server" in first.text
    assert "set-cookie" not in first.headers
    second = anyone.post("/signin", data={"key": "nope again"})
    assert second.status_code == 401
    assert time.monotonic() - started >= 1.5  # 0.5 s, then 1 s: the delay grows
    assert anyone.post("/signin", data={"key": ""}).status_code == 400


def test_the_session_cookie_is_signed_httponly_strict_and_expiring(keyed):
    with httpx.Client(base_url=keyed.url, timeout=60) as client:
        response = client.post("/signin", data={"key": KEY})
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("localoip_session=")
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "max-age=1800" in cookie  # session_hours = 0.5
        assert client.get("/").status_code == 200
        assert client.get("/v1/models").status_code == 200
        token = client.cookies["localoip_session"]
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        assert (
            httpx.get(f"{keyed.url}/v1/models", cookies={"localoip_session": forged}).status_code
            == 401
        )
        out = client.post("/signout")
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert "max-age=0" in out.headers["set-cookie"].lower()
        # A copy of the old cookie no longer works either.
        old = httpx.get(f"{keyed.url}/v1/models", cookies={"localoip_session": token})
        assert old.status_code == 401


def test_a_configured_cors_origin_may_call_with_the_key(keyed, anyone):
    headers = {"Origin": "http://playground.test", "Authorization": f"Bearer {KEY}"}
    body = {"model": "tiny-chat", "messages": HI, "max_tokens": 2}
    response = anyone.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://playground.test"
    other = anyone.post(
        "/v1/chat/completions", json=body, headers={**headers, "Origin": "http://evil.test"}
    )
    assert other.status_code == 403


def test_sign_in_in_chromium_wrong_key_right_key_chat_and_sign_out(browser, keyed):
    context = browser.new_context(base_url=keyed.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    assert page.url.endswith("/signin")
    page.get_by_label("API key").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not the server's API key" in page.get_by_role("alert").inner_text()
    assert context.cookies() == []
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => window.htmx && htmx.version")
    (cookie,) = context.cookies()
    assert cookie["name"] == "localoip_session" and cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 1700
    assert page.evaluate("document.cookie") == ""  # page scripts cannot read it
    send(page, "hello", max_tokens=3)
    assert wait_for_reply(page).locator(".turn-foot").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    assert context.cookies() == []
    page.goto("/")
    assert page.url.endswith("/signin")
    assert errors == []
    context.close()


def test_without_a_key_sign_in_leads_to_the_playground(http):
    assert http.get("/signin").headers["location"] == "/"
    assert http.post("/signin", data={"key": "x"}).headers["location"] == "/"


def test_the_page_shows_sign_out_only_with_a_key(http, keyed):
    assert "Sign out" not in http.get("/").text
    with signed_in(keyed) as client:
        assert "Sign out" in client.get("/").text


def test_show_code_gives_the_bearer_form_when_a_key_is_set(keyed, http):
    form = {"model": "tiny-chat", "message": "hi"}
    with signed_in(keyed) as client:
        code = client.post("/ui/chat/code", data=form, headers={"HX-Request": "true"}).text
        models = client.post("/ui/models/code", headers={"HX-Request": "true"}).text
    assert "api_key=os.environ[&#34;LOCALOIP_API_KEY&#34;]" in code
    assert "Authorization: Bearer $LOCALOIP_API_KEY" in code
    assert "Authorization: Bearer $LOCALOIP_API_KEY" in models
    open_code = http.post("/ui/chat/code", data=form, headers={"HX-Request": "true"}).text
    assert "Bearer" not in open_code and "api_key=&#34;x&#34;" in open_code


def test_key_snippets_are_valid_python_and_curl_sends_the_header():
    found = [
        *snippets.chat("http://h:9", "m", HI, {"temperature": 0.5}, "MY_KEY"),
        *snippets.embeddings("http://h:9", "m", ["a"], "MY_KEY"),
        *snippets.models("http://h:9", "m", "MY_KEY"),
    ]
    for snippet in found:
        if snippet.language == "python":
            compile(snippet.code, snippet.title, "exec")
            assert 'api_key=os.environ["MY_KEY"]' in snippet.code
        else:
            lines = [line for line in snippet.code.splitlines() if line.startswith("curl")]
            assert all('-H "Authorization: Bearer $MY_KEY"' in line for line in lines)


def test_conversation_routes_need_a_session_and_refuse_foreign_pages(keyed, anyone):
    """The new playground routes sit behind the same sign-in and Origin checks."""
    page = {"HX-Request": "true"}
    for method, path in (
        ("GET", "/ui/conversations"),
        ("GET", "/ui/conversations/x/export.json"),
        ("GET", "/ui/chat/x/stream"),
        ("POST", "/ui/conversations/import"),
        ("POST", "/ui/conversations/x/delete"),
    ):
        refused = anyone.request(method, path, headers=page, data={"data": "{}"})
        assert refused.status_code == 401 and "signed out" in refused.text, path
    with signed_in(keyed) as client:
        assert client.get("/ui/conversations").status_code == 200
        foreign = client.post(
            "/ui/conversations/import",
            data={"data": "{}"},
            headers={**page, "Origin": "http://evil.test"},
        )
        assert foreign.status_code == 403
