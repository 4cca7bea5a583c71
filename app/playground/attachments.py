"""Images attached to a chat message: read from the Send form (the page's file button, paste
and drop all fill its one file input), refused in words when the model reads no images or an
image breaks the model's limits (the one check every surface makes, `wire.images.pictures`),
and served back from the store by their SHA-256."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from litestar import Controller, Response, get
from litestar.datastructures import FormMultiDict, UploadFile
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.model_facts import model_facts
from localoip.app.core.registry import ModelHandle
from localoip.app.core.store import Database
from localoip.app.playground.records import chat_images
from localoip.app.playground.records.chat_images import ImageFile
from localoip.runtimes.capabilities import ChatImage, InputError
from localoip.runtimes.wire.images import pictures

FIELD = "images"
"""The Send form's file input."""


def uploads(form: FormMultiDict) -> list[UploadFile]:
    """The files the form carries (a file input left empty sends a nameless, empty part)."""
    return [f for f in form.getall(FIELD, []) if isinstance(f, UploadFile) and f.filename]


async def attached(
    form: FormMultiDict, handle: ModelHandle, earlier: Sequence[bytes] = ()
) -> list[ImageFile]:
    """The form's images, each checked as the model's API checks it, to keep with the
    message; `earlier` are the images the conversation already carries, which go to the
    model in the same request and count towards its `max_images`. InvalidInput (400), in
    words naming the file, when the model reads no images, or an image is not one, is too
    large in bytes or pixels, or there are too many."""
    files = uploads(form)
    if not files:
        return []
    if not model_facts(handle).vision:
        raise InvalidInput(
            f"“{handle.name}” reads no images: it has no image projector (mmproj). Choose a "
            "model marked vision, or remove the images.",
            FIELD,
        )
    sent = [ChatImage(await f.read(), f.filename) for f in files]
    before = [ChatImage(data, "an earlier message's image") for data in earlier]
    try:
        await asyncio.to_thread(pictures, [*before, *sent], handle.spec.options)
    except InputError as exc:
        raise InvalidInput(f"“{exc.param}”: {exc}", FIELD) from None
    return [chat_images.image_file(image.data) for image in sent]


class ChatImagesController(Controller):
    path = "/ui/chat/images"

    @get("/{sha256:str}")
    async def image(self, store: Database, sha256: str) -> Response[bytes]:
        """A kept image by its SHA-256; NotFound (404) if no message carries it."""
        found = await store.run(lambda db: chat_images.files(db, [sha256]).get(sha256))
        if found is None:
            raise NotFound(f"There is no image “{sha256}”; it may have been deleted.", "image")
        # The name is the content's hash: the browser may keep it.
        headers = {"cache-control": "private, max-age=86400, immutable"}
        return Response(found.data, media_type=found.media_type, headers=headers)
