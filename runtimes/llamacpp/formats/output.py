"""What a reply reader hands out: reasoning and content text, each with its whitespace rules,
and tool calls, as the pieces that stream and as whole calls at the end."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from localoip.runtimes.capabilities import Tool, ToolCall, ToolCallPiece

# A call's id from (tool name, call index, the id the model wrote or None).
IdMaker = Callable[[str, int, "str | None"], str]


def openai_id(name: str, index: int, written: str | None) -> str:
    """`call_` and 24 hex digits, as OpenAI's ids look."""
    return f"call_{uuid.uuid4().hex[:24]}"


def mistral_id(name: str, index: int, written: str | None) -> str:
    """Nine letters and digits: Mistral's templates refuse any other id."""
    if written and len(written) == 9 and written.isalnum():
        return written
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(9))


def kimi_id(name: str, index: int, written: str | None) -> str:
    """`functions.NAME:INDEX`, as Kimi K2 writes its calls and its template names results."""
    return f"functions.{name}:{index}"


class Channel:
    """Text of one kind (reasoning, or content) as it is handed out, in segments: a segment's
    leading whitespace may be dropped, and with `trim` its trailing whitespace is held until
    more text follows, and dropped when the segment ends."""

    def __init__(self, trim: bool) -> None:
        self.trim = trim
        self._parts: list[str] = []
        self._strip = False
        self._space = ""

    def begin(self, strip: bool) -> None:
        """Start a segment; `strip` drops its leading whitespace."""
        self._strip, self._space = strip, ""

    def add(self, text: str) -> None:
        if self._strip:
            text = text.lstrip()
            if not text:
                return
            self._strip = False
        if not self.trim:
            self._parts.append(text)
            return
        body = text.rstrip()
        if body:
            self._parts.append(self._space + body)
            self._space = text[len(body) :]
        else:
            self._space += text

    def end(self) -> None:
        """End the segment: held whitespace is dropped."""
        self._space = ""

    def take(self) -> str:
        """The text handed out since the last take."""
        out = "".join(self._parts)
        self._parts.clear()
        return out


@dataclass
class _Call:
    index: int
    id: str
    name: str
    arguments: str = ""
    shown: bool = True  # streamed and kept (not a second call when calls are not parallel)
    ended: bool = False


class Calls:
    """The reply's tool calls as a format's reader finds them.

    A reader starts a call with its name (refused, so the text stays text, when the name is
    not one of the tools), adds its arguments' JSON text, and ends it. Without `parallel`
    only the first call is kept: later ones are read but neither streamed nor kept.
    """

    def __init__(self, tools: tuple[Tool, ...], make_id: IdMaker, parallel: bool) -> None:
        self.tools = {t.name: t for t in tools}
        self._make_id = make_id
        self._parallel = parallel
        self._calls: list[_Call] = []
        self.pieces: list[ToolCallPiece] = []

    @property
    def enabled(self) -> bool:
        """Whether calls are read at all (the request offered tools)."""
        return bool(self.tools)

    @property
    def open(self) -> bool:
        """Whether a call has started and not ended."""
        return bool(self._calls) and not self._calls[-1].ended

    @property
    def count(self) -> int:
        """Calls started so far, kept or not."""
        return len(self._calls)

    @property
    def first_ended(self) -> bool:
        return bool(self._calls) and self._calls[0].ended

    def start(self, name: str, written_id: str | None = None) -> bool:
        """Begin a call to `name`; False (nothing begun) when no tool has that name."""
        if name not in self.tools:
            return False
        self.end()
        shown = self._parallel or not self._calls
        index = sum(c.shown for c in self._calls)
        call = _Call(index, self._make_id(name, index, written_id), name, shown=shown)
        self._calls.append(call)
        if shown:
            self.pieces.append(ToolCallPiece(index, call.id, name))
        return True

    def add(self, text: str) -> None:
        """More arguments text of the open call."""
        call = self._calls[-1]
        call.arguments += text
        if call.shown and text:
            self.pieces.append(ToolCallPiece(call.index, arguments=text))

    def end(self) -> None:
        """End the open call, if any (one that had no arguments gets `{}`)."""
        if self.open:
            if not self._calls[-1].arguments.strip():
                self.add("{}")
            self._calls[-1].ended = True

    def take(self) -> tuple[ToolCallPiece, ...]:
        out = tuple(self.pieces)
        self.pieces.clear()
        return out

    def whole(self) -> tuple[ToolCall, ...]:
        """The calls kept, whole."""
        return tuple(ToolCall(c.id, c.name, c.arguments) for c in self._calls if c.shown)


class Output:
    """Everything a reader hands out, and which stretches of the reply were reasoning."""

    def __init__(self, calls: Calls) -> None:
        self.reasoning = Channel(trim=True)
        self.content = Channel(trim=False)
        self.calls = calls
        self.spans: list[list[int]] = []  # [start, end) of the reply's reasoning, markers too

    def reasoning_from(self, at: int) -> None:
        """Reasoning starts at reply offset `at` (its opening marker, if it has one)."""
        self.spans.append([at, -1])
        self.reasoning.begin(strip=True)

    def reasoning_to(self, at: int) -> None:
        """The reasoning ends at reply offset `at` (after its closing marker)."""
        self.spans[-1][1] = at
        self.reasoning.end()
