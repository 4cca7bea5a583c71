"""Compaction: the model writes a summary of a conversation, sealed into a `compaction` item.

POST /responses/compact and a `compaction_trigger` input item both make one; sealer.py keeps
the summary unreadable and unforgeable, and inputs.chat_messages reads it back.
"""

from __future__ import annotations

import time

from localoip.app.api.openai.responses.output import tokens
from localoip.app.api.openai.responses.sealer import Sealer
from localoip.runtimes import capabilities as base
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.openai.responses import events as ev
from localoip.runtimes.wire.openai.responses.items import (
    CompactionItem,
    Item,
    MessageItem,
    new_id,
)
from localoip.runtimes.wire.openai.responses.objects import Compaction, usage

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


def compacted(items: list[Item], compaction: Item, used: tuple[int, int, int, int]) -> Compaction:
    """The `response.compaction` object: every user message, then the one compaction item."""
    kept: list[Item] = [i for i in items if isinstance(i, MessageItem) and i.role == "user"]
    return Compaction(
        id=new_id("resp"),
        created_at=int(time.time()),
        output=[*kept, compaction],
        usage=usage(*used),
    )


class SummaryBuilder:
    """Turns a summary's deltas into one compaction item, and the events that build it. The
    summary never shows: as in OpenAI, `response.compaction.compacting` carries none of it.

    It has OutputBuilder's interface, so a run can build either."""

    status = "completed"  # a summary cut at SUMMARY_TOKENS is still the summary

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self.output: list[Item] = []
        self.fold = Fold()
        self._id = new_id("cmp")
        self._opened = False

    @property
    def usage(self) -> tuple[int, int, int, int]:
        return tokens(self.fold)

    def add(self, delta: base.TextDelta) -> list[ev.Event]:
        events = self._open()
        if self.fold.add(delta).text:
            events.append(ev.compacting(self._id, 0))
        return events

    def finish(self, cancelled: bool = False) -> list[ev.Event]:
        """The sealed item once the summary is whole; a cancelled summary gives none."""
        if cancelled:
            return []
        done = CompactionItem(id=self._id, encrypted_content=self.sealer.seal(self.fold.text))
        self.output.append(done)
        return [*self._open(), ev.item_done(done, 0)]

    def _open(self) -> list[ev.Event]:
        if self._opened:
            return []
        self._opened = True
        return [ev.compaction_opened(self._id, 0)]
