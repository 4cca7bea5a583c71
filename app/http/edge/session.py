"""Playground sessions behind an API key: a signed, expiring cookie, and a slower wrong key.

A browser cannot send the bearer header from a page's links, forms and event streams, so a
person proves once that they hold the key and gets a cookie. It is HttpOnly (page scripts
cannot read it) and SameSite=Strict (no other site's request carries it). It is signed with
a secret drawn when the server starts, so a restart signs everyone out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from litestar.datastructures import Cookie

COOKIE = "localoip_session"
MAX_DELAY = 16.0  # seconds; the delay after the nth wrong key in a row is 0.5 * 2**(n-1)


class Sessions:
    """Sign-ins for one API key: checking the key, and issuing and checking session cookies."""

    def __init__(self, key: str, lifetime_seconds: float) -> None:
        self._key = hashlib.sha256(key.encode()).digest()
        self._secret = secrets.token_bytes(32)
        self.lifetime = int(lifetime_seconds)
        self._ended: dict[str, float] = {}  # signed-out sessions, until they would expire
        self._wrong: dict[str, int] = {}  # wrong keys in a row, by client address

    def key_matches(self, given: str) -> bool:
        """Constant-time: digests of equal length are compared, so nothing leaks the key."""
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._key)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        payload = f"{int(time.time()) + self.lifetime}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def valid(self, token: str | None) -> bool:
        if not token or token.count(".") != 2:
            return False
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return False
        expires = payload.partition(".")[0]
        return expires.isdigit() and int(expires) > time.time() and token not in self._ended

    def end(self, token: str | None) -> None:
        """Sign a session out: its cookie stops working here even if a copy of it survives."""
        now = time.time()
        self._ended = {t: until for t, until in self._ended.items() if until > now}
        if token and self.valid(token):
            self._ended[token] = float(token.partition(".")[0])

    def cookie(self, token: str, secure: bool) -> Cookie:
        return Cookie(
            key=COOKIE,
            value=token,
            max_age=self.lifetime,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    @staticmethod
    def cleared(secure: bool) -> Cookie:
        return Cookie(
            key=COOKIE,
            value="",
            max_age=0,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    async def wrong_key(self, client: str) -> None:
        """Wait longer after each wrong key in a row from the same address."""
        if len(self._wrong) > 4096:  # many addresses: forget them rather than grow
            self._wrong.clear()
        count = self._wrong[client] = min(self._wrong.get(client, 0) + 1, 16)
        await asyncio.sleep(min(0.5 * 2 ** (count - 1), MAX_DELAY))

    def right_key(self, client: str) -> None:
        self._wrong.pop(client, None)
