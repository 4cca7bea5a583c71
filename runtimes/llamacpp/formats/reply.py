"""Reading a reply whose parts are marked by tags: a reasoning block first (maybe opened by the
prompt), then the answer, in which call markers start tool calls and answer wrappers are
dropped. Every format but harmony reads this way (`Format.layout`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localoip.runtimes.llamacpp.formats.output import Output
from localoip.runtimes.llamacpp.formats.scan import Scan, Step, ahead, skip_space, stream_until

if TYPE_CHECKING:
    from localoip.runtimes.llamacpp.formats.format import Format


def read_tagged(scan: Scan, out: Output, fmt: Format, opened: bool) -> Step[None]:
    """Read the reply into `out`; `opened`: the prompt opened its reasoning block."""
    r = fmt.reasoning
    anywhere = fmt.calls.openers if out.calls.enabled else ()
    at_start = fmt.calls.at_start if out.calls.enabled else ()
    if r is not None and opened:
        out.reasoning_from(0)
        yield from _reasoning(scan, out, fmt)
    else:
        yield from skip_space(scan)  # held: whitespace before a marker is dropped
        heads = (*anywhere, *at_start, *((r.open,) if r is not None else ()))
        head = (yield from ahead(scan, heads)) if heads else None
        if r is not None and head == r.open:
            out.reasoning_from(scan.pos)
            scan.pos += len(head)
            yield from _reasoning(scan, out, fmt)
        elif head is not None:
            yield from _calls(scan, out, fmt, head)
        else:
            scan.pos = 0
            out.content.begin(strip=False)
    yield from _answer(scan, out, fmt, anywhere)


def _reasoning(scan: Scan, out: Output, fmt: Format) -> Step[None]:
    assert fmt.reasoning is not None
    yield from stream_until(scan, (fmt.reasoning.close,), out.reasoning.add)
    out.reasoning_to(scan.pos)
    out.content.begin(strip=True)


def _answer(scan: Scan, out: Output, fmt: Format, openers: tuple[str, ...]) -> Step[None]:
    stops = (*openers, *fmt.dropped)
    while True:
        stop = yield from stream_until(scan, stops, out.content.add, consume=False)
        if stop is None:
            return
        if stop in fmt.dropped:
            scan.pos += len(stop)
        else:
            yield from _calls(scan, out, fmt, stop)


def _calls(scan: Scan, out: Output, fmt: Format, opener: str) -> Step[None]:
    """Read calls at `opener`; text that turns out not to be calls stays text."""
    start, before = scan.pos, out.calls.count
    ok = yield from fmt.calls.read(scan, out.calls, opener)
    out.calls.end()
    if ok:
        out.content.begin(strip=True)
        return
    end = max(scan.pos, start + len(opener))
    if out.calls.count == before:
        out.content.add(scan.text[start:end])
    scan.pos = end
