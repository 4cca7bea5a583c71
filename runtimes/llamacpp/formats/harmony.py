"""gpt-oss's harmony format: a reply is messages, each `<|channel|>NAME ...<|message|>` then its
text up to `<|end|>` (later ones open with `<|start|>assistant`). The `analysis` channel is
reasoning, `final` (and `commentary` without a recipient) the answer, and a message to
`functions.NAME` a tool call whose text is its JSON arguments, ended by `<|call|>`. The
end-of-generation tokens (`<|call|>`, `<|return|>`) are never printed: a call's text runs to
the end of the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats.grammar import arguments_rule
from localoip.runtimes.llamacpp.formats.output import Calls, Output
from localoip.runtimes.llamacpp.formats.scan import (
    Emit,
    Scan,
    Step,
    ahead,
    skip_space,
    stream_until,
    until,
)
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal

if TYPE_CHECKING:
    from localoip.runtimes.llamacpp.formats.format import Format

START, CHANNEL, MESSAGE, END = "<|start|>", "<|channel|>", "<|message|>", "<|end|>"
ENDS = (END, "<|call|>", "<|return|>")
ANALYSIS = f"{CHANNEL}analysis{MESSAGE}"
CHANNEL_NAME = re.compile(r"<\|channel\|>\s*(\w+)")
RECIPIENT = re.compile(r"\bto=([^\s<]+)")


@dataclass(frozen=True, slots=True)
class HarmonyCalls:
    """The grammar of a forced call in harmony (the layout reads calls itself)."""

    openers: tuple[str, ...] = ()
    at_start: tuple[str, ...] = ()

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        return False
        yield

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        options = []
        for tool in tools:
            head = f"{CHANNEL}commentary to=functions.{tool.name} <|constrain|>json{MESSAGE}"
            options.append(f"{literal(head)} {arguments_rule(builder, tool)}")
        return builder.rule("tool-call", " | ".join(options))


def read_harmony(scan: Scan, out: Output, fmt: Format, opened: bool) -> Step[None]:
    """Read a harmony reply into `out`; `opened`: the prompt opened an analysis message."""
    if opened:
        yield from _body(scan, out, 0, "analysis", None)
    while True:
        yield from skip_space(scan)
        at = scan.pos
        if (yield from ahead(scan, (START, CHANNEL))) is None:
            if scan.pos >= len(scan.text):
                return
            out.content.begin(strip=False)  # text outside any message: the answer
            if (yield from stream_until(scan, (START, CHANNEL), out.content.add, False)) is None:
                return
            continue
        header = yield from until(scan, (MESSAGE,))
        if header is None:
            return  # cut inside a message's header: nothing of it to show
        channel = CHANNEL_NAME.search(header[0])
        recipient = RECIPIENT.search(header[0])
        name = recipient[1].removeprefix("functions.") if recipient else None
        if not (yield from _body(scan, out, at, channel[1] if channel else "", name)):
            return


def _body(scan: Scan, out: Output, at: int, channel: str, recipient: str | None) -> Step[bool]:
    """Read a message's text, from reply offset `at`; whether more messages may follow."""
    emit: Emit
    if recipient is not None and out.calls.start(recipient):
        emit = out.calls.add
    elif channel == "analysis" and recipient is None:
        out.reasoning_from(at)
        emit = out.reasoning.add
    else:
        out.content.begin(strip=False)
        emit = out.content.add
    stop = yield from stream_until(scan, (*ENDS, START), emit, consume=False)
    if stop in ENDS:
        scan.pos += len(stop)
    if emit == out.reasoning.add:
        out.reasoning_to(scan.pos)
    out.calls.end()
    return stop is not None
