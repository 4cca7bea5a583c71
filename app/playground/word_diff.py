"""A word-level diff of two texts (difflib), as runs of kept, removed and added words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from markupsafe import Markup

WORDS = re.compile(r"\s+|[^\s]+")
"""Words and the white space between them, so joining the pieces gives the text back."""


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of text: in both texts (`same`), only in the first (`removed`), or only in
    the second (`added`)."""

    kind: Literal["same", "removed", "added"]
    text: str


def words(text: str) -> list[str]:
    return WORDS.findall(text)


def word_diff(first: str, second: str) -> list[Run]:
    """The runs that turn `first` into `second`, word by word (white space counts as a word,
    so a changed line break shows). Joining the `same` and `removed` runs gives `first`;
    the `same` and `added` runs give `second`."""
    a, b = words(first), words(second)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    runs: list[Run] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            runs.append(Run("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(Run("removed", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(Run("added", "".join(b[j1:j2])))
    return runs


def same_share(first: str, second: str) -> float:
    """How much of the two texts' words (white space aside) they share in order: difflib's
    ratio, 0 to 1 (1 for two empty texts)."""
    return SequenceMatcher(None, first.split(), second.split(), autojunk=False).ratio()


def diff_html(runs: list[Run]) -> Markup:
    """The runs as text with <del> and <ins>, everything escaped."""
    tags = {"same": "{}", "removed": "<del>{}</del>", "added": "<ins>{}</ins>"}
    return Markup("").join(Markup(tags[run.kind]).format(run.text) for run in runs)
