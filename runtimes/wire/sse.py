"""Server-sent events as a client reads them: the data of each event, in order."""

from __future__ import annotations

from collections.abc import Iterator


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event; comments and other fields are skipped."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line.removeprefix("data:")
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)
