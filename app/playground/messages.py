"""What the playground tells a person: model states and errors, in words."""

from __future__ import annotations

import logging

from litestar.exceptions import HTTPException
from localoip.app.core.errors import (
    CapabilityMissing,
    LocaloipError,
    ModelCrashed,
    ModelNotReady,
)
from localoip.app.core.registry import ModelHandle, ModelState
from localoip.runtimes.capabilities import Capability, InputError, UpstreamError

log = logging.getLogger("localoip")

STATE_WORDS = {
    ModelState.READY: "ready",
    ModelState.LOADING: "loading",
    ModelState.UNLOADED: "unloaded",
    ModelState.UNAVAILABLE: "unavailable",
}

ABILITY = {
    Capability.CHAT: "chat",
    Capability.COMPLETION: "complete text",
    Capability.EMBED: "make embeddings",
    Capability.IMAGE: "generate images",
    Capability.TRANSCRIBE: "transcribe speech",
}


def require_usable(handle: ModelHandle, capability: Capability) -> None:
    """Refuse, in words, a model that cannot do `capability` now. Whether it can is core's
    rule (ModelHandle.require, as at /v1 and OIP): a model that loads on demand (unloaded by
    keep_alive, or not yet loaded with `load = "on-demand"`) can, and loads when its job
    starts. Raises CapabilityMissing (400), ModelNotReady or ModelCrashed (503)."""
    try:
        handle.require(capability)
    except CapabilityMissing:
        raise CapabilityMissing(
            f"“{handle.name}” cannot {ABILITY[capability]}. Choose another model.", "model"
        ) from None
    except (ModelNotReady, ModelCrashed) as exc:
        raise type(exc)(not_usable(handle), "model") from None


def not_usable(handle: ModelHandle) -> str:
    """Why a model that cannot take requests now cannot, and what to do about it."""
    name = handle.name
    if handle.state is ModelState.LOADING:
        return f"“{name}” is still loading. Try again in a moment."
    if handle.state is ModelState.UNLOADED:
        return f"“{name}” is unloaded. Load it on the Models tab, or choose another model."
    return (
        f"“{name}” is not available: it failed to load ({handle.reason or 'no reason given'}). "
        "Choose another model, or fix it and load it again on the Models tab."
    )


def sentence(text: str) -> str:
    """Capitalised, with a full stop: error messages read as sentences."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?)”" else text + "."


def explain(exc: BaseException) -> str:
    """A person's explanation of any error; unexpected ones are logged with their traceback."""
    if isinstance(exc, LocaloipError | InputError):
        return sentence(str(exc))
    if isinstance(exc, UpstreamError):
        return sentence(f"The upstream server answered {exc.status}: {exc}")
    if isinstance(exc, HTTPException):
        return sentence(exc.detail)
    log.error("playground: unexpected error", exc_info=exc)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"Something went wrong on the server ({detail}). The server log has the details."
