"""A reply's text as it arrives in pieces, and the steps the formats' readers are written in.

A reader is a generator over a `Scan`: each step consumes text at the cursor when enough of it
has arrived, and yields (waits for more) when the text so far cannot decide it yet. Once
`done` is set no more text comes, and a step decides on what there is. So a reader written
once reads a reply fed whole, in two, or one character at a time, with the same result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

T = TypeVar("T")
Step = Generator[None, None, T]  # a step: yields while it waits for text, returns its result
Emit = Callable[[str], None]


class Scan:
    """The reply's text so far, a cursor into it, and whether it has ended."""

    def __init__(self) -> None:
        self.text = ""
        self.pos = 0
        self.done = False


def held(text: str, markers: Sequence[str]) -> int:
    """How many characters at the end of `text` may begin one of `markers`."""
    most = 0
    for marker in markers:
        for i in range(min(len(marker) - 1, len(text)), most, -1):
            if text.endswith(marker[:i]):
                most = i
                break
    return most


def first(text: str, markers: Sequence[str], start: int) -> tuple[int, str] | None:
    """The earliest of `markers` in `text` from `start` (the longest, where two start
    together), as (where, marker)."""
    found = None
    for marker in markers:
        at = text.find(marker, start)
        if at >= 0 and (found is None or (at, -len(marker)) < (found[0], -len(found[1]))):
            found = (at, marker)
    return found


def peek(scan: Scan) -> Step[str]:
    """The character at the cursor, once it has come ("" if the text ended first)."""
    while scan.pos >= len(scan.text):
        if scan.done:
            return ""
        yield
    return scan.text[scan.pos]


def skip_space(scan: Scan) -> Step[None]:
    """Move past whitespace, up to the next other character or the end of the text."""
    while True:
        rest = scan.text[scan.pos :]
        scan.pos += len(rest) - len(rest.lstrip())
        if scan.pos < len(scan.text) or scan.done:
            return
        yield


def accept(scan: Scan, literal: str) -> Step[bool]:
    """Consume `literal` if the text goes on with it."""
    choice = yield from ahead(scan, (literal,))
    if choice is not None:
        scan.pos += len(literal)
    return choice is not None


def ahead(scan: Scan, literals: Sequence[str]) -> Step[str | None]:
    """Which of `literals` the text goes on with (the longest that does), not consumed."""
    while True:
        rest = scan.text[scan.pos :]
        matched = [lit for lit in literals if rest.startswith(lit)]
        pending = [lit for lit in literals if len(rest) < len(lit) and lit.startswith(rest)]
        if not scan.done and any(len(p) > max(map(len, matched), default=-1) for p in pending):
            yield
            continue
        return max(matched, key=len) if matched else None


def until(scan: Scan, stops: Sequence[str], consume: bool = True) -> Step[tuple[str, str] | None]:
    """The text up to the first of `stops`, and that stop (consumed unless not `consume`);
    None when the text ends first (nothing consumed)."""
    searched = scan.pos
    while True:
        found = first(scan.text, stops, searched)
        if found is not None:
            at, stop = found
            value = scan.text[scan.pos : at]
            scan.pos = at + len(stop) if consume else at
            return value, stop
        if scan.done:
            return None
        searched = max(scan.pos, len(scan.text) - max(map(len, stops)) + 1)
        yield


def stream_until(
    scan: Scan, stops: Sequence[str], emit: Emit, consume: bool = True
) -> Step[str | None]:
    """Hand the text to `emit` as it comes, up to the first of `stops`; that stop (consumed
    unless not `consume`), or None at the end of the text. Only text that may still begin a
    stop is held back."""
    while True:
        found = first(scan.text, stops, scan.pos)
        if found is not None:
            at, stop = found
            if at > scan.pos:
                emit(scan.text[scan.pos : at])
            scan.pos = at + len(stop) if consume else at
            return stop
        end = len(scan.text) if scan.done else len(scan.text) - held(scan.text, stops)
        if end > scan.pos:
            emit(scan.text[scan.pos : end])
            scan.pos = end
        if scan.done:
            return None
        yield


def json_value(scan: Scan, emit: Emit) -> Step[bool]:
    """Hand the JSON value at the cursor to `emit` as it comes; whether it was whole.

    Only its extent is checked (strings, brackets, where a bare literal ends), not its
    grammar: a value that does not start as one is not consumed (False)."""
    depth, in_string, escaped = 0, False, False
    start = scan.pos
    opener = yield from peek(scan)
    if opener == "" or (opener not in '{["-' and not opener.isalnum()):
        return False
    while True:
        text, i = scan.text, scan.pos
        end = None
        while i < len(text):
            ch = text[i]
            i += 1
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                    if depth == 0:
                        end = i
                        break
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth <= 0:
                    end = i if depth == 0 else i - 1
                    break
            elif depth == 0 and not (ch.isalnum() or ch in "+-."):
                end = i - 1
                break
        stop = len(text) if end is None else end
        if stop > scan.pos:
            emit(text[scan.pos : stop])
            scan.pos = stop
        if end is not None:
            return scan.pos > start
        if scan.done:
            return not in_string and depth == 0 and scan.pos > start and opener not in '{["'
        yield


def json_string(scan: Scan) -> Step[str | None]:
    """The JSON string at the cursor, decoded (None if there is none there, or it is cut)."""
    if (yield from peek(scan)) != '"':
        return None
    start = scan.pos
    whole = yield from json_value(scan, lambda _: None)
    if not whole:
        return None
    try:
        value = json.loads(scan.text[start : scan.pos])
    except ValueError:
        return None
    return value if isinstance(value, str) else None
