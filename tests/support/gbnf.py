"""A small GBNF matcher, to check in tests that a text is one a grammar admits (llama.cpp's
own matcher needs a loaded vocabulary).

It reads the GBNF that our grammar builders write (one rule a line: literals, character
classes, rule names, groups, `|`, and the `*` `+` `?` `{m,n}` repetitions) and answers
whether the whole text matches the root rule, by the set of positions each part can end at.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

Node = tuple[Any, ...]
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "]": "]", "[": "[", "-": "-"}
ESCAPES |= {"^": "^", "/": "/"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def space(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1

    def char(self) -> str:
        ch = self.text[self.i]
        self.i += 1
        if ch != "\\":
            return ch
        ch = self.text[self.i]
        self.i += 1
        width = {"x": 2, "u": 4, "U": 8}.get(ch)
        if width:
            code = int(self.text[self.i : self.i + width], 16)
            self.i += width
            return chr(code)
        return ESCAPES[ch]

    def alternatives(self) -> Node:
        options = [self.sequence()]
        while self.i < len(self.text) and self.text[self.i] == "|":
            self.i += 1
            options.append(self.sequence())
        return ("alt", options)

    def sequence(self) -> Node:
        items = []
        while True:
            self.space()
            if self.i >= len(self.text) or self.text[self.i] in "|)":
                return ("seq", items)
            items.append(self.postfix(self.atom()))

    def atom(self) -> Node:
        ch = self.text[self.i]
        if ch == '"':
            self.i += 1
            out = []
            while self.text[self.i] != '"':
                out.append(self.char())
            self.i += 1
            return ("lit", "".join(out))
        if ch == "[":
            self.i += 1
            negated = self.text[self.i] == "^"
            self.i += negated
            ranges = []
            while self.text[self.i] != "]":
                lo = self.char()
                hi = lo
                if self.text[self.i] == "-" and self.text[self.i + 1] != "]":
                    self.i += 1
                    hi = self.char()
                ranges.append((lo, hi))
            self.i += 1
            return ("cls", negated, tuple(ranges))
        if ch == "(":
            self.i += 1
            inner = self.alternatives()
            assert self.text[self.i] == ")"
            self.i += 1
            return inner
        if ch == ".":
            self.i += 1
            return ("cls", True, ())
        start = self.i
        while self.i < len(self.text) and (
            self.text[self.i].isalnum() or self.text[self.i] in "-_"
        ):
            self.i += 1
        assert self.i > start, f"unexpected {self.text[self.i :]!r}"
        return ("ref", self.text[start : self.i])

    def postfix(self, node: Node) -> Node:
        while self.i < len(self.text) and self.text[self.i] in "*+?{":
            ch = self.text[self.i]
            self.i += 1
            if ch == "{":
                end = self.text.index("}", self.i)
                low, _, high = self.text[self.i : end].partition(",")
                many = None if _ and not high.strip() else int(high or low)
                node, self.i = ("rep", node, int(low), many), end + 1
            else:
                node = ("rep", node, int(ch == "+"), 1 if ch == "?" else None)
        return node


def parse(grammar: str) -> dict[str, Node]:
    rules = {}
    for line in grammar.splitlines():
        if "::=" in line:
            name, _, body = line.partition("::=")
            rules[name.strip()] = _Parser(body.strip()).alternatives()
    return rules


def matches(grammar: str, text: str) -> bool:
    """Whether `text`, whole, is a sentence of `grammar`'s root rule."""
    rules = parse(grammar)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))

    @cache
    def rule(name: str, pos: int) -> frozenset[int]:
        return ends(rules[name], pos)

    def ends(node: Node, pos: int) -> frozenset[int]:
        kind = node[0]
        if kind == "lit":
            return frozenset([pos + len(node[1])]) if text.startswith(node[1], pos) else frozenset()
        if kind == "cls":
            if pos >= len(text):
                return frozenset()
            inside = any(lo <= text[pos] <= hi for lo, hi in node[2])
            return frozenset([pos + 1]) if inside != node[1] else frozenset()
        if kind == "ref":
            return rule(node[1], pos)
        if kind == "alt":
            return frozenset().union(*(ends(option, pos) for option in node[1]))
        if kind == "seq":
            at = frozenset([pos])
            for item in node[1]:
                at = frozenset().union(*(ends(item, p) for p in at))
            return at
        _, inner, low, high = node
        found, frontier, count = set(), {pos}, 0
        if low == 0:
            found.add(pos)
        while frontier and (high is None or count < high):
            frontier = set().union(*(ends(inner, p) for p in frontier)) - (
                found if count >= low else set()
            )
            count += 1
            if count >= low:
                found |= frontier
        return frozenset(found)

    return len(text) in rule("root", 0)
