"""What a model family's replies look like: its reasoning markers, its tool-call syntax, the
markers dropped from its answers, its call ids; and the grammar of a forced reply, which lets
the model reason first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats.grammar import excluding
from localoip.runtimes.llamacpp.formats.output import Calls, IdMaker, Output, openai_id
from localoip.runtimes.llamacpp.formats.scan import Scan, Step
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal

SPACE = "[ \\t\\n]{0,8}"  # around a reasoning block


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A reasoning block: `open` text, then the reasoning, then `close`. `after` is what a
    grammar writes between the block and the answer (harmony's next message header)."""

    open: str
    close: str
    after: str = ""


class CallSyntax(Protocol):
    """How a family writes tool calls: where they start, how to read them, and the grammar
    of a forced call."""

    @property
    def openers(self) -> tuple[str, ...]:
        """Texts that start calls anywhere in the answer."""
        ...

    @property
    def at_start(self) -> tuple[str, ...]:
        """Texts that start calls only at the start of the reply."""
        ...

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        """Read the calls at the cursor, which is at `opener` (not consumed); False when the
        text turns out not to be calls (the cursor is where that became clear)."""
        ...

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        """A grammar rule for a call to one of `tools` (or, with `many`, one or more calls)."""
        ...


@dataclass(frozen=True, slots=True)
class EitherCalls:
    """Calls in either of two syntaxes, told apart by their markers (`first` where both
    use one); a forced call is written in `first`."""

    first: CallSyntax
    second: CallSyntax

    @property
    def openers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.first.openers, *self.second.openers)))

    @property
    def at_start(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.first.at_start, *self.second.at_start)))

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        mine = opener in (*self.first.openers, *self.first.at_start)
        return (yield from (self.first if mine else self.second).read(scan, calls, opener))

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        return self.first.rule(builder, tools, many)


Layout = Callable[[Scan, Output, "Format", bool], Step[None]]


@dataclass(frozen=True, slots=True)
class Format:
    """A model family's reply format, recognised from its chat template (families.py).

    `layout` reads a whole reply (markers delimiting reasoning and calls, or harmony's
    channels); `dropped` are markers taken out of the answer (answer wrappers); `answer` is
    what a grammar writes around a free answer (a response format). `template_tools` and
    `one_call_per_turn` say how the template takes tools and calls, for rendering."""

    name: str
    layout: Layout
    calls: CallSyntax
    reasoning: Reasoning | None = None
    dropped: tuple[str, ...] = ()
    answer: tuple[str, str] = ("", "")
    make_id: IdMaker = openai_id
    template_tools: bool = False
    one_call_per_turn: bool = False

    def markers(self) -> tuple[str, ...]:
        """Every marker the format uses, which an answer never shows."""
        found = [*self.calls.openers, *self.calls.at_start, *self.dropped]
        if self.reasoning is not None:
            found += [self.reasoning.open, self.reasoning.close]
        return tuple(m for m in found if len(m) > 1)

    def opens_reasoning(self, prompt: str) -> bool:
        """Whether a rendered prompt (with its generation prompt) leaves the reply inside a
        reasoning block, as a template that writes the opening tag itself does."""
        return self.reasoning is not None and prompt.rstrip().endswith(self.reasoning.open)

    def reply_rule(self, builder: GrammarBuilder, body: str, opened: bool) -> str:
        """A rule for a reply that reasons first, as the family does, then is `body`: the
        reasoning block is optional, or (`opened`: the prompt opened it) has only its end."""
        r = self.reasoning
        if r is None:
            return body
        text = excluding(builder, r.close)
        block = f"{text} {literal(r.close + r.after)} {SPACE}"
        if not opened:
            block = f"({SPACE} {literal(r.open)} {block})?"
        return builder.rule("reply", f"{block} ({body})")

    def answer_rule(self, builder: GrammarBuilder, body: str) -> str:
        """A rule for a free answer that is `body`, wrapped as the family wraps answers."""
        head, tail = self.answer
        return builder.rule("answer", f"{literal(head)} {body} {literal(tail)}")

    def calls_rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        """A rule for a forced reply's calls: one call to one of `tools`, or with `many`
        (parallel calls allowed) one or more."""
        return self.calls.rule(builder, tools, many)
