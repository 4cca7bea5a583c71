"""The inspector of a stored reply: its request as OpenAI JSON and as OIP tensors, code that
sends it (curl and Python, at /v1 and the Seldon-style URL), a replay through the real /v1
whose SSE frames the page records, and each token's alternatives."""

from __future__ import annotations

import json
from dataclasses import dataclass
from sqlite3 import Connection

from litestar import Controller, get
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.store import Database
from localoip.app.playground import snippets
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.records import conversations
from localoip.app.playground.records.conversations import Message
from localoip.app.playground.replies import probability, reasoning_words
from localoip.app.playground.reply_request import ReplyRequest, history


@dataclass(frozen=True, slots=True)
class StoredReply:
    """A finished reply, the conversation it is in, and the request that made it."""

    conversation: str
    message: Message
    request: ReplyRequest


def stored_reply(db: Connection, mid: str) -> StoredReply:
    """Reply `mid` and its request; NotFound (404) for an unknown id or one that is not a
    reply, InvalidInput (400) for a reply still being written."""
    found = conversations.step(db, mid)
    if found is None or found[1].message.role != "assistant" or found[1].message.parent is None:
        raise NotFound(f"There is no reply “{mid}”; it may have been deleted.", "message")
    cid, step = found
    message = step.message
    if message.status == "streaming":
        raise InvalidInput("This reply is still being written; wait until it ends.", "message")
    path = conversations.path_to(db, cid, message.parent)
    past = history(path, conversations.images_of(db, path))
    asked = ReplyRequest(ChatSettings.of(message.meta), past, message.meta.prefix or "")
    return StoredReply(cid, message, asked)


def pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class InspectorController(Controller):
    path = "/ui/replies"

    @get("/{mid:str}/inspect")
    async def inspect(
        self, request: HTMXRequest, store: Database, api_key_env: str | None, mid: str
    ) -> HTMXTemplate:
        """The inspector, for the page's dialog."""
        reply = await store.run(lambda db: stored_reply(db, mid))
        asked = reply.request
        model = asked.settings.model
        server = str(request.base_url).rstrip("/")
        body = asked.openai_body()
        oip = asked.oip_body()
        code = snippets.chat(
            server, model, asked.wire_messages(), asked.openai_fields(), api_key_env
        )
        return HTMXTemplate(
            template_name="playground/inspector.html",
            context={
                "reply": reply.message,
                "reasoning_words": reasoning_words(reply.message.meta),
                "prefix": asked.prefix,
                "model": model,
                "openai_json": pretty(body),
                "wire_body": json.dumps(body, ensure_ascii=False),
                "oip_json": pretty(oip),
                "beyond_tensors": asked.beyond_tensors(),
                "snippets": [
                    *code,
                    snippets.oip_infer(server, model, asked.oip_body(), api_key_env),
                ],
                "replay_urls": [
                    ("/v1", "/v1/chat/completions"),
                    ("Seldon-style URL", f"/v2/models/{model}/infer/chat/completions"),
                ],
            },
        )

    @get("/{mid:str}/tokens/{index:int}")
    async def alternatives(self, store: Database, mid: str, index: int) -> HTMXTemplate:
        """Token `index` of reply `mid` and its most likely alternatives, each of which can
        start a branch."""
        reply = await store.run(lambda db: stored_reply(db, mid))
        tokens = reply.message.meta.tokens or []
        if not 0 <= index < len(tokens):
            raise NotFound(f"This reply has no token {index}.", "index")
        token = tokens[index]
        return HTMXTemplate(
            template_name="playground/token_alternatives.html",
            context={
                "conversation": reply.conversation,
                "reply": reply.message,
                "index": index,
                "token": token.token,
                "percent": probability(token.logprob),
                "choices": [(i, t, probability(p)) for i, (t, p) in enumerate(token.top)],
            },
        )
