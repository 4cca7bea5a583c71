"""Run cards: a permalink for a stored reply (model, file digest, every parameter, seed,
server version) whose page runs the same request again and says whether the output is
identical, and if not, where it first differs and what changed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version

from litestar import Controller, get, post
from litestar.response import Template
from litestar_htmx import HTMXTemplate
from localoip.app.model_digest import model_digest
from localoip.app.registry import Registry
from localoip.app.store import Store
from localoip.app.ui.chat import FINISH_WORDS
from localoip.app.ui.inspector import StoredReply, stored_reply
from localoip.app.ui.messages import require_ready
from localoip.app.ui.templates import CONTENT_SECURITY_POLICY
from localoip.runtimes.base import Capability


@dataclass(frozen=True, slots=True)
class Verdict:
    """A run again, against the stored one: `first_difference` is the index of the first
    character that differs (None: identical), with what else changed in words."""

    output: str
    first_difference: int | None
    changes: list[str]

    @property
    def identical(self) -> bool:
        return self.first_difference is None


def first_difference(before: str, after: str) -> int | None:
    """The index of the first character where two texts differ; None when they are equal."""
    if before == after:
        return None
    return next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
        min(len(before), len(after)),
    )


def card_fields(reply: StoredReply) -> list[tuple[str, str]]:
    """What the card lists, in order: model, digest, version, seed, then every parameter."""
    meta = reply.message.meta
    fields = [
        ("Model", meta.model or "unknown"),
        ("Model file digest", meta.digest or "not recorded"),
        ("Server version", meta.server_version or "not recorded"),
        ("Seed", "none (random)" if meta.seed is None else str(meta.seed)),
    ]
    for name, value in reply.request.openai_fields().items():
        if name != "seed":
            fields.append((name, json.dumps(value)))
    if reply.request.settings.system:
        fields.append(("System prompt", reply.request.settings.system))
    if reply.request.prefix:
        fields.append(("Continues from", reply.request.prefix))
    reason = meta.finish_reason or "error"
    fields.append(("Finish", f"{reason} ({FINISH_WORDS.get(reason, reason)})"))
    made = datetime.fromtimestamp(reply.message.created_at, UTC)
    fields.append(("Made", made.strftime("%Y-%m-%d %H:%M:%S UTC")))
    return fields


class RunCardController(Controller):
    path = "/ui/runs"

    @get("/{mid:str}")
    async def card(self, store: Store, mid: str) -> Template:
        """The run card of reply `mid`, a page of its own; it runs the reply again on load."""
        reply = await store.run(lambda db: stored_reply(db, mid))
        return Template(
            template_name="playground/run_card.html",
            headers={"content-security-policy": CONTENT_SECURITY_POLICY},
            context={
                "version": version("localoip"),
                "reply": reply.message,
                "conversation": reply.conversation,
                "fields": card_fields(reply),
                "messages": reply.request.wire_messages(),
            },
        )

    @post("/{mid:str}/rerun", status_code=200)
    async def rerun(self, registry: Registry, store: Store, mid: str) -> HTMXTemplate:
        """Run reply `mid`'s request again (whole, not streamed) and compare."""
        reply = await store.run(lambda db: stored_reply(db, mid))
        meta = reply.message.meta
        handle = registry.get(reply.request.settings.model)
        require_ready(handle, Capability.CHAT)
        result = await handle.generate(Capability.CHAT, reply.request.chat_request())
        output = reply.request.prefix + result.text
        changes = []
        digest = await asyncio.to_thread(model_digest, handle.spec)
        if meta.digest and digest != meta.digest:
            changes.append(f"The model file has changed: it was {meta.digest}, now {digest}.")
        now = version("localoip")
        if meta.server_version and now != meta.server_version:
            changes.append(f"The server was {meta.server_version} and is now {now}.")
        if meta.seed is None:
            changes.append("This reply had no seed, so a new run is free to differ.")
        if meta.finish_reason not in ("stop", "length"):
            changes.append("The stored reply did not end by itself (it was stopped or failed).")
        verdict = Verdict(output, first_difference(reply.message.content, output), changes)
        return HTMXTemplate(
            template_name="playground/run_verdict.html",
            context={"verdict": verdict, "stored": reply.message.content},
        )
