"""Compaction: the model writes a summary of a conversation, sealed into a `compaction` item.

POST /responses/compact and a `compaction_trigger` input item both make one; app/openai/sealer.py
keeps the summary unreadable and unforgeable, and responses.chat_messages reads it back.
"""

from __future__ import annotations

import time
from typing import Any

from localoip.app.api.openai import responses
from localoip.app.api.openai.sealer import Sealer
from localoip.runtimes import capabilities as base

SUMMARY_TOKENS = 256
"""The longest summary the model may write."""

PROMPT = (
    "Summarize the conversation above so that it can go on from the summary alone. Keep "
    "every fact, name, number, decision, tool result and open question; drop pleasantries. "
    "Write only the summary."
)


def summary_request(messages: list[base.ChatMessage]) -> base.ChatRequest:
    """The chat that asks the model for a summary of `messages`: greedy, and short."""
    return base.ChatRequest(
        messages=[*messages, base.ChatMessage("user", PROMPT)],
        sampling=base.Sampling(max_tokens=SUMMARY_TOKENS, temperature=0.0),
        tool_choice="none",
    )


def compacted(items: list[Any], compaction: dict[str, Any], usage: tuple[int, int, int]) -> dict:
    """The `response.compaction` object: every user message, then the one compaction item."""
    kept = [i for i in items if i["type"] == "message" and i["role"] == "user"]
    return {
        "id": responses.new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, compaction],
        "usage": responses.usage(*usage),
    }


class SummaryBuilder:
    """Turns a summary's deltas into one compaction item, and the events that build it. The
    summary never shows: as in OpenAI, `response.compaction.compacting` carries none of it.

    It has OutputBuilder's interface, so a run can build either."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self.output: list[dict[str, Any]] = []
        self.usage: tuple[int, int, int] = (0, 0, 0)  # input, output, cached input tokens
        self.status = "completed"  # a summary cut at SUMMARY_TOKENS is still the summary
        self._id = responses.new_id("cmp")
        self._text: list[str] = []
        self._opened = False

    def add(self, delta: base.TextDelta) -> list[dict[str, Any]]:
        events = self._open()
        if delta.text:
            self._text.append(delta.text)
            events.append(responses.compacting(self._id, 0))
        if delta.usage is not None:
            self.usage = (*delta.usage, delta.cached_tokens)
        return events

    def add_result(self, result: base.TextResult) -> list[dict[str, Any]]:
        usage = (result.prompt_tokens, result.completion_tokens)
        delta = base.TextDelta(
            result.text, result.finish_reason, usage=usage, cached_tokens=result.cached_tokens
        )
        return self.add(delta)

    def finish(self, cancelled: bool = False) -> list[dict[str, Any]]:
        """The sealed item once the summary is whole; a cancelled summary gives none."""
        if cancelled:
            return []
        summary = "".join(self._text)
        done = {
            "id": self._id,
            "type": "compaction",
            "encrypted_content": self.sealer.seal(summary),
        }
        self.output.append(done)
        return [
            *self._open(),
            responses.event("response.output_item.done", output_index=0, item=done),
        ]

    def _open(self) -> list[dict[str, Any]]:
        if self._opened:
            return []
        self._opened = True
        return [responses.compaction_opened(self._id, 0)]
