"""Work the server owns: started by a POST, run whether or not a page watches, its events kept
by index so any number of pages can follow it over SSE and pick up again with Last-Event-ID."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar_htmx import HTMXTemplate
from localoip.app.core.disconnect import detached
from localoip.app.core.errors import InvalidInput, TooManyJobs

Render = Callable[..., str]
"""render(template_name, **context) -> HTML."""

J = TypeVar("J", bound="Job")
KEEP_SECONDS = 600.0
"""How long a finished job stays in memory (its result is also in the store, where it has one)."""
KEEP_AT_MOST = 64
RUNNING_AT_MOST = 8
"""Jobs running at once; each holds a place in its model's queue."""
RUN_AT_MOST_SECONDS = 1800.0
"""A job still running after this long is stopped, so a forgotten one cannot hold a model."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: `html` is appended to what the page shows (`append`) or replaces it."""

    name: str
    html: str
    append: bool = True


def coalesced(events: list[Event], first: int) -> Iterator[tuple[int, Event]]:
    """The same effect in fewer events: a replacing event is dropped when a later one of its
    name follows, and runs of one name become one event, with the index of the run's last.

    A page that catches up on a long reply gets its text so far in a couple of events.
    """
    last = {e.name: i for i, e in enumerate(events) if not e.append}
    kept = [(first + i, e) for i, e in enumerate(events) if e.append or last[e.name] == i]
    start = 0
    while start < len(kept):
        end = start + 1
        while end < len(kept) and kept[end][1].name == kept[start][1].name:
            end += 1
        run = [e for _, e in kept[start:end]]
        html = "".join(e.html for e in run) if run[0].append else run[-1].html
        yield kept[end - 1][0], Event(run[0].name, html, run[0].append)
        start = end


class Job:
    """One piece of work and every event it sent, in order, ending with `done`.

    The work starts as the job is added to `Jobs`. Pages follow it with `events(after)`;
    the last event is always `done`, carrying the final HTML, and a page that asks after
    the end gets `done` again, so EventSource never retries forever.
    """

    def __init__(self, render: Render, job_id: str | None = None) -> None:
        self.id = job_id or secrets.token_urlsafe(12)
        self.render = render
        self.log: list[Event] = []
        self._changed = asyncio.Event()
        self.finished = asyncio.Event()
        self.created_at = time.monotonic()
        self.finished_at: float | None = None
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    async def work(self) -> None:
        """The work itself; it sends events with `emit`."""
        raise NotImplementedError

    async def save(self) -> None:
        """Keep the result once the work has ended (by default, nowhere)."""

    def final_html(self) -> str:
        """The HTML that replaces the job's element once the work has ended."""
        raise NotImplementedError

    def emit(self, name: str, html: str, append: bool = True) -> None:
        self.log.append(Event(name, str(html), append))  # plain str: joining Markup escapes
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def shown(self) -> tuple[int, dict[str, str]]:
        """What a page that followed from the start shows now: the last event's index (-1:
        none yet) and, per event name, its HTML (appended events joined, else the last)."""
        html: dict[str, str] = {}
        for event in self.log:
            before = html.get(event.name, "") if event.append else ""
            html[event.name] = before + event.html
        return len(self.log) - 1, html

    def begin(self) -> None:
        if self.task is None and not self.finished.is_set():
            # Not the POST's context: its client leaving must not drop the job's queued work.
            self.task = asyncio.create_task(self._run(), context=detached())
            # Not a `finally` in _run: a task cancelled before it starts never runs its body.
            self.task.add_done_callback(lambda _: self.finish())
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(RUN_AT_MOST_SECONDS, self.cancel, "time limit")

    def cancel(self, reason: str) -> None:
        """Stop the work for `reason` (it becomes the finish reason); a no-op once it ended."""
        if self.finished.is_set():
            return
        self.stop_reason = reason
        if self.task is None:
            self.finish()
        elif not self.task.done():
            self.task.cancel()

    async def stop(self, reason: str) -> None:
        """Cancel, and wait until the job has ended."""
        self.cancel(reason)
        await self.finished.wait()

    def finish(self) -> None:
        """End the job: render its final state and send it as `done`."""
        if self.finished.is_set():
            return
        self.finished_at = time.monotonic()
        if self._deadline is not None:
            self._deadline.cancel()
        self.finished.set()
        self.emit("done", self.final_html(), append=False)

    async def _run(self) -> None:
        await self.work()
        await self.save()

    async def events(self, after: int = -1) -> AsyncIterator[tuple[int, Event]]:
        """The events after index `after` (-1: all), as they come; runs that are already
        waiting arrive coalesced. Ends with `done`, which is sent again to a late page."""
        position = after + 1
        while True:
            changed = self._changed
            if position < len(self.log):
                waiting = self.log[position:]
                for item in coalesced(waiting, position):
                    yield item
                position += len(waiting)
            elif self.finished.is_set():
                if after + 1 >= len(self.log):  # asked after the end: `done` once more
                    yield len(self.log) - 1, self.log[-1]
                return
            else:
                await changed.wait()


def last_event_id(header: str | None) -> int:
    """The index after which a page that reconnects wants events (-1: from the start)."""
    if header is None or not header.strip():
        return -1
    try:
        index = int(header)
    except ValueError:
        index = -2
    if index < -1:
        raise InvalidInput(f"Last-Event-ID (or after) must be an event number, not {header!r}.")
    return index


def stream(job: Job, after: int = -1) -> ServerSentEvent:
    """The job's events after `after` as SSE, each with its index as the event id."""

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        async for index, event in job.events(after):
            yield ServerSentEventMessage(event=event.name, data=event.html, id=str(index))

    return ServerSentEvent(frames(), headers={"cache-control": "no-store"})


def closed(event_html: str) -> ServerSentEvent:
    """One `done` event: the answer for a job that is no longer running here."""

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        yield ServerSentEventMessage(event="done", data=event_html)

    return ServerSentEvent(frames(), headers={"cache-control": "no-store"})


class KeptJob(Job):
    """A job whose `result` (a record with an `id`) is kept in the store when it ends."""

    result: Any


K = TypeVar("K", bound=KeptJob)


async def stop_card(
    jobs: Jobs,
    job_id: str,
    kind: type[K],
    stored: Callable[[], Awaitable[Any]],
    template: str,
    element: str,
) -> HTMXTemplate:
    """Stop the running job `job_id` of `kind` and answer, once it has ended, with its result
    card: `template` with `result`, replacing the element `#{element}-{id}`. A job no longer in
    memory answers with `stored()`, which raises NotFound (404) when there is none."""
    job = jobs.get(job_id, kind)
    if job is not None:
        await job.stop("stopped")
        result = job.result
    else:
        result = await stored()
    return HTMXTemplate(
        template_name=template,
        context={"result": result},
        re_target=f"#{element}-{result.id}",
        re_swap="outerHTML",
    )


class Jobs:
    """Jobs by id. At most RUNNING_AT_MOST run at once; finished ones are forgotten after
    KEEP_SECONDS, or sooner beyond KEEP_AT_MOST."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def make_room(self, count: int = 1) -> None:
        """Raise TooManyJobs (429) unless `count` more jobs may run within RUNNING_AT_MOST."""
        self._prune()
        running = sum(1 for j in self._jobs.values() if not j.finished.is_set())
        if running + count > RUNNING_AT_MOST:
            raise TooManyJobs(
                f"{running} replies and images are running already, the most the playground "
                "runs at once. Wait for one to finish, or stop one."
            )

    def add(self, job: J) -> J:
        """Start the job; TooManyJobs (429) when RUNNING_AT_MOST are running already."""
        self.make_room()
        self._jobs[job.id] = job
        job.begin()
        return job

    def get(self, job_id: str, kind: type[J]) -> J | None:
        job = self._jobs.get(job_id)
        return job if isinstance(job, kind) else None

    def _prune(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            if job.finished_at is not None and (
                now - job.finished_at > KEEP_SECONDS or len(self._jobs) >= KEEP_AT_MOST
            ):
                del self._jobs[job_id]
