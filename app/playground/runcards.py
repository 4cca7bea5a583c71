"""Run cards: a permalink for a stored reply or image result (model, file digest, every
parameter, seed, server version) whose page runs the same request again and says whether the
output is identical, and if not, where it first differs and what changed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from sqlite3 import Connection

from litestar import Controller, get, post
from litestar.response import Template
from litestar_htmx import HTMXTemplate
from localoip.app.core.config import ModelSpec
from localoip.app.core.errors import NotFound
from localoip.app.core.model_digest import reading_digest
from localoip.app.core.registry import Registry
from localoip.app.core.store import Database
from localoip.app.playground.image_runs import (
    ImagesVerdict,
    PictureVerdict,
    image_card_fields,
    picture_difference,
    rerun_request,
)
from localoip.app.playground.inspector import StoredReply, stored_reply
from localoip.app.playground.messages import require_usable
from localoip.app.playground.records import image_results
from localoip.app.playground.records.chat_images import digest, image_file, image_url
from localoip.app.playground.records.conversations import MessageMeta
from localoip.app.playground.records.image_results import ImageResult
from localoip.app.playground.replies import FINISH_WORDS, reasoning_words
from localoip.app.playground.reply_request import ReplyRequest
from localoip.app.playground.templates import CONTENT_SECURITY_POLICY
from localoip.runtimes.capabilities import IMAGE_MARKER, Capability, chat_images


@dataclass(frozen=True, slots=True)
class RunMessage:
    """A message of the request as the card shows it: its text, and its images' URLs."""

    role: str
    content: str
    images: list[str]


def run_messages(request: ReplyRequest) -> list[RunMessage]:
    """The request's messages for the card: text, and the images each carried."""
    return [
        RunMessage(
            m.role,
            (m.content or "").replace(IMAGE_MARKER, ""),
            [image_url(digest(image.data)) for image in m.images],
        )
        for m in request.messages()
    ]


def image_fields(request: ReplyRequest) -> list[tuple[str, str]]:
    """One field per image the request carried: its type, bytes and SHA-256."""
    return [
        (f"Image {i}", image_file(image.data).words())
        for i, image in enumerate(chat_images(request.past), 1)
    ]


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
    """What the card lists, in order: model, digest, version, seed, every parameter, then
    each image the request carried."""
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
    fields += image_fields(reply.request)
    if meta.reasoning:
        fields.append(("Reasoning", reasoning_words(meta)))
    if meta.decode_steps:
        fields.append(("Speculative decoding", speculation_words(meta)))
    reason = meta.finish_reason or "error"
    fields.append(("Finish", f"{reason} ({FINISH_WORDS.get(reason, reason)})"))
    return fields


def speculation_words(meta: MessageMeta) -> str:
    """What speculative decoding did for a reply: "34 of 40 drafted tokens kept (85%); 2.1
    tokens a decode step"."""
    drafted, kept = meta.draft_tokens or 0, meta.accepted_tokens or 0
    rate = f" ({100 * kept / drafted:.0f}%)" if drafted else ""
    per_step = (meta.completion_tokens or 0) / (meta.decode_steps or 1)
    return f"{kept} of {drafted} drafted tokens kept{rate}; {per_step:.1f} tokens a decode step"


def made(created_at: float) -> tuple[str, str]:
    return ("Made", datetime.fromtimestamp(created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


async def what_changed(spec: ModelSpec, digest: str | None, server: str | None) -> list[str]:
    """What differs from when an output was made: the model file (its digest now, read off
    the event loop) and the server's version. Nothing is said of what was not recorded."""
    changes = []
    now_digest = await reading_digest(spec)
    if digest and now_digest != digest:
        changes.append(f"The model file has changed: it was {digest}, now {now_digest}.")
    now = version("localoip")
    if server and now != server:
        changes.append(f"The server was {server} and is now {now}.")
    return changes


def card_page(run_id: str, fields: list[tuple[str, str]], **context: object) -> Template:
    return Template(
        template_name="playground/run_card.html",
        headers={"content-security-policy": CONTENT_SECURITY_POLICY},
        context={"version": version("localoip"), "run_id": run_id, "fields": fields, **context},
    )


async def rerun_images(registry: Registry, result: ImageResult, store: Database) -> ImagesVerdict:
    """Make `result`'s pictures again with the request they were made with, and compare each
    with the stored one."""
    wanted = rerun_request(result)
    handle = registry.get(result.model)
    require_usable(handle, Capability.IMAGE)
    made_again = await handle.call(Capability.IMAGE, lambda rt: rt.generate_images(wanted))
    stored = await store.run(lambda db: [image_results.png(db, p.id) for p in result.pictures])

    def compare() -> list[PictureVerdict]:
        return [
            PictureVerdict(new.seed, new.png, picture_difference(old or b"", new.png))
            for old, new in zip(stored, made_again, strict=True)
        ]

    pictures = await asyncio.to_thread(compare)
    return ImagesVerdict(
        pictures, await what_changed(handle.spec, result.digest, result.server_version)
    )


def run_of(db: Connection, run_id: str) -> ImageResult | StoredReply:
    """The image result or the reply `run_id` names; NotFound (404) if neither."""
    image = image_results.get(db, run_id)
    if image is not None:
        return image
    try:
        return stored_reply(db, run_id)
    except NotFound:
        raise NotFound(
            f"There is no reply or image result “{run_id}”; it may have been deleted.", "run"
        ) from None


class RunCardController(Controller):
    path = "/ui/runs"

    @get("/{run_id:str}")
    async def card(self, store: Database, run_id: str) -> Template:
        """The run card of a reply or an image result, a page of its own; it runs the same
        request again on load. NotFound (404) for an id that names neither."""
        reply = await store.run(lambda db: run_of(db, run_id))
        if isinstance(reply, ImageResult):
            fields = [*image_card_fields(reply), made(reply.created_at)]
            back = {"href": "/", "words": "Open the playground"}
            return card_page(run_id, fields, back=back, images=reply)
        back = {"href": f"/?c={reply.conversation}", "words": "Open the conversation"}
        return card_page(
            run_id,
            [*card_fields(reply), made(reply.message.created_at)],
            back=back,
            images=None,
            output=reply.message.content,
            messages=run_messages(reply.request),
        )

    @post("/{run_id:str}/rerun", status_code=200)
    async def rerun(self, registry: Registry, store: Database, run_id: str) -> HTMXTemplate:
        """Run the request again (whole, not streamed) and compare: a reply character by
        character, pictures pixel by pixel. Conflict (409) for images that did not finish."""
        reply = await store.run(lambda db: run_of(db, run_id))
        if isinstance(reply, ImageResult):
            verdict = await rerun_images(registry, reply, store)
            return HTMXTemplate(
                template_name="playground/image_verdict.html", context={"verdict": verdict}
            )
        meta = reply.message.meta
        handle = registry.get(reply.request.settings.model)
        require_usable(handle, Capability.CHAT)
        result = await handle.generate(Capability.CHAT, reply.request.chat_request())
        output = reply.request.prefix + result.text
        changes = await what_changed(handle.spec, meta.digest, meta.server_version)
        if meta.seed is None:
            changes.append("This reply had no seed, so a new run is free to differ.")
        if meta.finish_reason not in ("stop", "length"):
            changes.append("The stored reply did not end by itself (it was stopped or failed).")
        verdict = Verdict(output, first_difference(reply.message.content, output), changes)
        return HTMXTemplate(
            template_name="playground/run_verdict.html",
            context={"verdict": verdict, "stored": reply.message.content},
        )
