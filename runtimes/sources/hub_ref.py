"""The `hf:` source syntax: `owner/repo[@revision][:QUANT | /path/in/repo]`."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REF = re.compile(
    rf"(?P<owner>{NAME})/(?P<repo>{NAME})"
    r"(?:@(?P<revision>[^/:@\s]+))?"
    r"(?::(?P<quant>[A-Za-z0-9_.-]+)|/(?P<path>\S+))?"
)
EXAMPLES = "e.g. 'hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M' or 'hf:stabilityai/sd-turbo'"


@dataclass(frozen=True, slots=True)
class HubRef:
    """A model on the Hugging Face hub: a repository, a revision, and a quant or a file in it."""

    repo_id: str
    revision: str | None = None  # a branch, tag or commit; None: the default branch
    quant: str | None = None  # a GGUF quantisation tag such as Q4_K_M
    path: str | None = None  # a file inside the repository

    def __str__(self) -> str:
        text = "hf:" + self.repo_id + (f"@{self.revision}" if self.revision else "")
        if self.quant:
            return f"{text}:{self.quant}"
        return f"{text}/{self.path}" if self.path else text


def parse_hub_ref(value: str) -> HubRef:
    """Parse what follows `hf:`; raises ValueError naming the expected shape."""
    match = REF.fullmatch(value.strip())
    if match is None or (match["path"] and "" in match["path"].split("/")):
        raise ValueError(
            f"'hf:{value}' is not 'hf:<owner>/<repo>[@<revision>][:<QUANT> or /<file>]', "
            + EXAMPLES
        )
    return HubRef(
        repo_id=f"{match['owner']}/{match['repo']}",
        revision=match["revision"],
        quant=match["quant"],
        path=match["path"],
    )
