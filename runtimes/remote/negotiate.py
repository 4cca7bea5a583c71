"""What a remote OIP upstream offers, read when the model loads: the server's extensions (binary
tensors, generate), the model's declared tensors and its versions; and so what it can serve."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.remote.common import upstream_message

PROBE_TIMEOUT = 10.0
"""Seconds each load-time request may take, at most."""

BINARY = "binary_tensor_data"
GENERATE = "generate"

NEEDS = {
    Capability.CHAT: ("role", "content"),
    Capability.COMPLETION: ("prompt",),
    Capability.EMBED: ("input",),
    Capability.IMAGE: ("prompt",),
    Capability.TENSORS: (),
}
"""The input tensors each capability sends (tensors: whatever the client sends)."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """What the upstream said of itself and of the model."""

    extensions: frozenset[str]  # from GET /v2; empty when it has no such route
    inputs: frozenset[str]  # the model's declared input names; empty: it declares none
    outputs: frozenset[str]
    versions: tuple[str, ...]

    def offers(self) -> frozenset[Capability]:
        """The capabilities its declared tensors fit: always `tensors`, and chat, completion,
        embeddings or images where its inputs (and an `image` output) are Seldon's names."""
        found = {Capability.TENSORS}
        if {"role", "content"} <= self.inputs:
            found.add(Capability.CHAT)
        if "prompt" in self.inputs:
            found.add(Capability.IMAGE if "image" in self.outputs else Capability.COMPLETION)
        if "input" in self.inputs:
            found.add(Capability.EMBED)
        return frozenset(found)

    def refusal(self, capabilities: frozenset[Capability]) -> str | None:
        """Why the model cannot serve these (configured) capabilities, or None. A model that
        declares no inputs is trusted with any."""
        for capability in sorted(capabilities):
            missing = [n for n in NEEDS[capability] if n not in self.inputs]
            if self.inputs and missing:
                return (
                    f"cannot do {capability}: it takes inputs {sorted(self.inputs)}, not {missing}"
                )
        return None


def _names(tensors: object) -> frozenset[str]:
    if not isinstance(tensors, list):
        return frozenset()
    return frozenset(str(t["name"]) for t in tensors if isinstance(t, dict) and "name" in t)


def read_upstream(client: httpx.Client, base: str, model: str, path: str) -> Upstream:
    """GET /v2, the model's readiness and its metadata at `path` (/v2/models/{model}).

    Raises ConnectionError when the upstream does not answer, LookupError when it does not
    serve the model (both with the reason in words)."""
    where = f"{base}{path}/ready"
    try:
        server = client.get("/v2", timeout=PROBE_TIMEOUT)
        ready = client.get(f"{path}/ready", timeout=PROBE_TIMEOUT)
        metadata = client.get(path, timeout=PROBE_TIMEOUT) if ready.is_success else None
    except httpx.HTTPError as exc:
        raise ConnectionError(
            f"upstream {where} is unreachable: {type(exc).__name__}: {exc}"
        ) from None
    if ready.status_code == 404:
        raise LookupError(
            f"upstream {base} does not serve model {model!r}: {upstream_message(ready)}"
        )
    if metadata is None:
        raise ConnectionError(
            f"upstream {where} answered {ready.status_code}: {upstream_message(ready)}"
        )
    extensions: frozenset[str] = frozenset()
    if server.is_success:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            extensions = frozenset(str(e) for e in server.json().get("extensions") or ())
    try:
        meta = metadata.json() if metadata.is_success else {}
        meta = meta if isinstance(meta, dict) else {}
    except ValueError:
        meta = {}
    versions = meta.get("versions")
    return Upstream(
        extensions,
        _names(meta.get("inputs")),
        _names(meta.get("outputs")),
        tuple(str(v) for v in versions) if isinstance(versions, list) else (),
    )
