"""Signing in to the playground with the API key, and out again (only when a key is set)."""

from __future__ import annotations

from importlib.metadata import version

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template
from localoip.app.http.edge.media_types import FORM, body_types
from localoip.app.http.edge.session import COOKIE, Sessions
from localoip.app.playground.routes import ui_error
from localoip.app.playground.templates import CONTENT_SECURITY_POLICY

WRONG_KEY = "That is not the server's API key. Check it and try again."
AS_HTML = {Exception: ui_error}


def sign_in_page(sessions: Sessions, message: str | None = None, status: int = 200) -> Template:
    hours = sessions.lifetime / 3600
    return Template(
        template_name="playground/signin.html",
        context={
            "version": version("localoip"),
            "message": message,
            "hours": f"{hours:g} hour{'' if hours == 1 else 's'}",
        },
        headers={"content-security-policy": CONTENT_SECURITY_POLICY},
        status_code=status,
    )


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


class SignInController(Controller):
    """GET and POST /signin, POST /signout; with no key set they lead back to the playground."""

    exception_handlers = AS_HTML
    include_in_schema = False
    opt = body_types(FORM)  # the sign-in page's form

    @get("/signin")
    async def page(self, request: Request, sessions: Sessions | None) -> Response:
        if sessions is None or sessions.valid(request.cookies.get(COOKIE)):
            return Redirect("/")
        return sign_in_page(sessions)

    @post("/signin", status_code=303)
    async def sign_in(self, request: Request, sessions: Sessions | None) -> Response:
        if sessions is None:
            return Redirect("/", status_code=303)
        given = (await request.form()).get("key")
        if not isinstance(given, str) or not given:
            return sign_in_page(sessions, "Enter the API key.", 400)
        client = request.client.host if request.client else ""
        if not sessions.key_matches(given):
            await sessions.wrong_key(client)
            return sign_in_page(sessions, WRONG_KEY, 401)
        sessions.right_key(client)
        cookie = sessions.cookie(sessions.issue(), _secure(request))
        return Redirect("/", status_code=303, cookies=[cookie])

    @post("/signout", status_code=303)
    async def sign_out(self, request: Request, sessions: Sessions | None) -> Response:
        if sessions is None:
            return Redirect("/", status_code=303)
        sessions.end(request.cookies.get(COOKIE))
        return Redirect("/signin", status_code=303, cookies=[Sessions.cleared(_secure(request))])
