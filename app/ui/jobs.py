"""Work a page starts with a POST and watches over SSE, kept in memory by id for a while."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from litestar.response import ServerSentEvent, ServerSentEventMessage

Render = Callable[..., str]
"""render(template_name, **context) -> HTML."""

J = TypeVar("J", bound="Job")
KEEP_SECONDS = 600.0
KEEP_AT_MOST = 64


class Job:
    """One piece of work whose events (name, HTML) queue up until the page reads them.

    The work starts when the page first connects, so a page that never does costs
    nothing. The last event is always `done`, carrying the final HTML; a page that
    reconnects after it gets `done` again, so EventSource never retries forever.
    """

    def __init__(self, render: Render) -> None:
        self.id = secrets.token_urlsafe(12)
        self.render = render
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.final: str | None = None
        self.finished = asyncio.Event()
        self.created_at = time.monotonic()
        self.finished_at: float | None = None
        self.task: asyncio.Task[None] | None = None

    async def work(self) -> None:
        """The work itself; it sends events with `emit`."""
        raise NotImplementedError

    def final_html(self) -> str:
        """The HTML that replaces the job's element once the work has ended."""
        raise NotImplementedError

    def emit(self, event: str, html: str) -> None:
        self.events.put_nowait((event, html))

    def begin(self) -> None:
        if self.task is None and not self.finished.is_set():
            self.task = asyncio.create_task(self._run())

    def finish(self) -> None:
        """End the job: render its final state and send it as `done`."""
        if self.finished.is_set():
            return
        self.final = self.final_html()
        self.finished_at = time.monotonic()
        self.finished.set()
        self.emit("done", self.final)

    def abandon(self) -> None:
        """The page went away mid-job; by default the work carries on to its end."""

    async def _run(self) -> None:
        try:
            await self.work()
        finally:
            self.finish()

    async def next_event(self) -> tuple[str, str]:
        if self.final is not None and self.events.empty():
            return "done", self.final
        return await self.events.get()


def stream(job: Job) -> ServerSentEvent:
    """The job's events as SSE, ending with `done`; starting it if it has not started."""

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        job.begin()
        done = False
        try:
            while not done:
                event, html = await job.next_event()
                done = event == "done"
                yield ServerSentEventMessage(event=event, data=html)
        finally:
            if not done:
                job.abandon()

    return ServerSentEvent(frames(), headers={"cache-control": "no-store"})


def closed(event_html: str) -> ServerSentEvent:
    """One `done` event: the answer for a job this server does not (or no longer) know."""

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        yield ServerSentEventMessage(event="done", data=event_html)

    return ServerSentEvent(frames(), headers={"cache-control": "no-store"})


class Jobs:
    """Jobs by id. Finished ones are forgotten after KEEP_SECONDS, or sooner beyond
    KEEP_AT_MOST; ones that no page ever started, after KEEP_SECONDS."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def add(self, job: J) -> J:
        self._prune()
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str, kind: type[J]) -> J | None:
        job = self._jobs.get(job_id)
        return job if isinstance(job, kind) else None

    def _prune(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None:
                forget = now - job.finished_at > KEEP_SECONDS or len(self._jobs) >= KEEP_AT_MOST
            else:
                forget = job.task is None and now - job.created_at > KEEP_SECONDS
            if forget:
                del self._jobs[job_id]
