"""Server-sent events as a client reads them: the data of each event, in order."""

from __future__ import annotations

from collections.abc import Iterator


class EventData:
    """The data of server-sent events, read one line at a time (without its line end);
    comments and other fields are skipped."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def line(self, line: str) -> str | None:
        """The data of the event `line` ends (a blank line after data), else None."""
        if not line:
            return self.end()
        if line.startswith("data:"):
            self._data.append(line.removeprefix("data:").removeprefix(" "))
        return None

    def end(self) -> str | None:
        """The data of an event the stream ended without a blank line after, if any."""
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event in lines (each without its line end)."""
    events = EventData()
    for line in lines:
        data = events.line(line)
        if data is not None:
            yield data
    last = events.end()
    if last is not None:
        yield last
