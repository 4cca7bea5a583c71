"""The server-runner boundary: msgpack frames, and the capability methods that cross it.

The methods are those of the capability protocols in runtimes/capabilities.py. Their
argument and result types are read from the protocols' annotations, so a field added to a
request or result dataclass crosses without a change here. Callbacks (an image's step callback, a
batched generation's emit) never cross: the runner sends their calls as Item frames.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from localoip.runtimes import capabilities as base
from localoip.runtimes.facts import ModelFacts

PROTOCOLS: tuple[type, ...] = (
    base.ChatModel,
    base.CompletionModel,
    base.BatchedGeneration,
    base.EmbeddingModel,
    base.RerankModel,
    base.ChatTokenizerModel,
    base.TokenizerModel,
    base.ImageModel,
    base.TranscriptionModel,
)
"""The capability protocols a runner may serve, by which its proxy is built."""


class Load(msgspec.Struct, tag=True, array_like=True):
    """Server -> runner, first: the model to load."""

    runtime: str
    source: str
    source_kind: str
    options: msgspec.Raw


class Ready(msgspec.Struct, tag=True, array_like=True):
    """Runner -> server: loaded; the protocols its runtime implements, and what its model is."""

    protocols: list[str]
    slots: int  # generations run at once; above 1, the runtime has a batching engine
    slots_reason: str = ""  # how they were chosen (`parallel` set, or sized by "auto")
    facts: ModelFacts | None = None


class Call(msgspec.Struct, tag=True, array_like=True):
    id: int
    method: str
    args: msgspec.Raw


class Cancel(msgspec.Struct, tag=True, array_like=True):
    id: int


class Item(msgspec.Struct, tag=True, array_like=True):
    """One streamed value of a call: a delta, or an image's (step, total)."""

    id: int
    value: msgspec.Raw


class Done(msgspec.Struct, tag=True, array_like=True):
    id: int
    value: msgspec.Raw


class Failed(msgspec.Struct, tag=True, array_like=True):
    """A call (id 0: the load) failed: kind is "input" (a client error), "cancelled" or "error"."""

    id: int
    kind: str
    message: str
    param: str | None = None
    code: str | None = None


Frame = Load | Ready | Call | Cancel | Item | Done | Failed


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return (obj.dtype.str, obj.shape, obj.tobytes())
    raise NotImplementedError(f"cannot send {type(obj).__name__} to or from a runner")


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is np.ndarray:
        dtype, shape, data = obj
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
    raise NotImplementedError(f"cannot read {kind} from a runner")


ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_frames = msgspec.msgpack.Decoder(Frame)
_NOTHING = msgspec.msgpack.encode(None)


@dataclass(frozen=True, slots=True)
class Method:
    """One protocol method as it crosses: its arguments and what comes back."""

    name: str
    args: msgspec.msgpack.Decoder  # a tuple of the non-callback arguments
    result: msgspec.msgpack.Decoder  # the return value (for a stream: None)
    item: msgspec.msgpack.Decoder | None  # a stream's items, or a callback's calls
    callback: bool  # the last parameter is a callback (on_step, emit)
    arity: int  # arguments that cross, callbacks left out


def _is_callback(hint: Any) -> bool:
    """A Callable, or an optional one: such a parameter stays on its side of the boundary."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    return any(typing.get_origin(o) is Callable or o is Callable for o in options)


def _method(protocol: type, name: str) -> Method:
    hints = typing.get_type_hints(getattr(protocol, name))
    returns = hints.pop("return")
    callback = bool(hints) and _is_callback(list(hints.values())[-1])
    params = [h for h in hints.values() if not _is_callback(h)]
    item: Any = None
    if typing.get_origin(returns) is Iterator:
        item, returns = typing.get_args(returns)[0], None
    elif name.endswith("_batched"):
        item, returns = base.TextDelta, None
    elif callback:
        item = tuple[int, int]  # an image's (step, total_steps)

    def decoder(kind: Any) -> msgspec.msgpack.Decoder:
        return msgspec.msgpack.Decoder(kind, dec_hook=_dec_hook)

    return Method(
        name,
        decoder(tuple[tuple(params)] if params else tuple),
        decoder(returns),
        decoder(item) if item is not None else None,
        callback,
        len(params),
    )


def _protocol_methods(protocol: type) -> list[str]:
    return [n for n in vars(protocol) if not n.startswith("_") and callable(vars(protocol)[n])]


METHODS: dict[str, Method] = {
    name: _method(protocol, name) for protocol in PROTOCOLS for name in _protocol_methods(protocol)
}
PROTOCOL_METHODS: dict[str, list[str]] = {p.__name__: _protocol_methods(p) for p in PROTOCOLS}
# ChatTokenizerModel inherits TokenizerModel's methods
PROTOCOL_METHODS["ChatTokenizerModel"] += PROTOCOL_METHODS["TokenizerModel"]


def encode(value: Any) -> msgspec.Raw:
    return msgspec.Raw(ENCODER.encode(value)) if value is not None else msgspec.Raw(_NOTHING)


class Connection:
    """Length-prefixed frames over a connected socket; sends are safe from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = sock.makefile("rb", buffering=1 << 16)
        self._lock = threading.Lock()

    def send(self, frame: Frame) -> None:
        payload = ENCODER.encode(frame)
        with self._lock:
            self.sock.sendall(struct.pack("<I", len(payload)) + payload)

    def receive(self) -> Frame | None:
        """The next frame; None when the other side is gone."""
        try:
            head = self._reader.read(4)
            if len(head) < 4:
                return None
            (size,) = struct.unpack("<I", head)
            payload = self._reader.read(size)
        except (OSError, ValueError):
            return None
        if len(payload) < size:
            return None
        return _frames.decode(payload)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
