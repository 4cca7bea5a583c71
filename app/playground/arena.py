"""The Arena tab: one prompt to 2-4 models (or one model with different settings) with the seed
locked, each column a chat job streaming beside the others; a word-level diff of the finished
texts and an optional blind vote. For images, a small grid over seeds or steps."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from itertools import zip_longest
from sqlite3 import Connection

from litestar import Controller, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import Conflict, InvalidInput
from localoip.app.core.limits import image_request
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Database
from localoip.app.playground.chat_job import ChatJob
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.forms import integer, integer_of, number_of, text, texts
from localoip.app.playground.images import (
    ImageJob,
    ImageSettings,
    Shown,
    as_shown,
    gone,
    start_images,
)
from localoip.app.playground.jobs import Jobs, Render, closed, last_event_id, stream
from localoip.app.playground.messages import require_usable
from localoip.app.playground.models import Choice
from localoip.app.playground.records import arenas, conversations, image_results
from localoip.app.playground.records.arenas import LETTERS, Arena, Column
from localoip.app.playground.records.conversations import MessageMeta
from localoip.app.playground.records.image_results import ImageResult
from localoip.app.playground.replies import ReplyView, lost_reply
from localoip.app.playground.reply_request import ReplyRequest
from localoip.app.playground.templates import renderer
from localoip.app.playground.word_diff import diff_html, same_share, word_diff
from localoip.runtimes.capabilities import Capability, ChatMessage
from markupsafe import Markup

COLUMNS_AT_MOST = 4
GRID_AT_MOST = 6
"""Cells of an image grid: a small grid, within the jobs the playground runs at once."""
SEED_RANGE = 2**31
"""A locked seed drawn when none is given: small enough to read and type again."""


@dataclass(frozen=True, slots=True)
class ArenaSettings:
    """The text arena's form: shared prompt, system prompt, max tokens and seed; per column a
    model and a temperature (a column with no model is left out)."""

    prompt: str
    blind: bool
    columns: list[ChatSettings]

    @classmethod
    def from_form(cls, form: FormMultiDict) -> ArenaSettings:
        prompt = text(form, "prompt").strip()
        if not prompt:
            raise InvalidInput("Type the prompt every column answers.", "prompt")
        max_tokens = integer(form, "max_tokens", "Max tokens", 1, 1 << 20)
        seed = integer(form, "seed", "Seed", 0, 2**63 - 1)
        seed = secrets.randbelow(SEED_RANGE) if seed is None else seed
        system = text(form, "system").strip()
        columns = []
        for model, temperature in zip_longest(texts(form, "model"), texts(form, "temperature")):
            if not (model or "").strip():
                continue
            t = number_of(temperature or "", "temperature", "Temperature", 0.0, 2.0)
            columns.append(ChatSettings(model.strip(), system, t, max_tokens, seed))
        if len(columns) < 2:
            raise InvalidInput(
                "Choose at least two columns: two models, or one model twice with different "
                "settings.",
                "model",
            )
        if len(columns) > COLUMNS_AT_MOST:
            raise InvalidInput(
                f"An arena compares at most {COLUMNS_AT_MOST} columns; there are {len(columns)}.",
                "model",
            )
        return cls(prompt, text(form, "blind") == "on", columns)


def first_columns(models: list[Choice]) -> list[str]:
    """The models the form's columns start with: the chosen chat model, then another ready
    one (else the same model again, to compare settings), then none."""
    chosen = next((m.name for m in models if m.selected), "")
    other = next((m.name for m in models if m.name != chosen and m.label == m.name), chosen)
    return [chosen, other, "", ""]


def label(settings: ChatSettings) -> str:
    temperature = "default" if settings.temperature is None else f"{settings.temperature:g}"
    return f"{settings.model} · temperature {temperature}"


class ArenaJob(ChatJob):
    """A column's reply: a chat job whose finished state is drawn as an arena column."""

    def __init__(
        self,
        render: Render,
        handle: ModelHandle,
        settings: ChatSettings,
        store: Database,
        arena: Arena,
        index: int,
    ) -> None:
        chat = ReplyRequest(settings, [ChatMessage("user", arena.prompt)]).chat_request()
        cid, mid = arena.conversation or "", arena.columns[index].id
        super().__init__(render, handle, settings, chat, store, cid, mid)
        self.arena, self.index = arena, index

    def final_html(self) -> str:
        column = ColumnView(self.index, self.arena.columns[self.index].label, self.view(), False)
        return self.render("playground/arena_column.html", arena=self.arena, column=column)


@dataclass(frozen=True, slots=True)
class ColumnView:
    """A column as the page shows it: a reply (chat) or an image result, and whether its job
    still runs."""

    index: int
    label: str
    reply: ReplyView | None
    streaming: bool
    image: Shown | None = None

    @property
    def letter(self) -> str:
        return LETTERS[self.index]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two finished columns' texts as a word-level diff, and the share of words they share."""

    first: int
    second: int
    html: Markup
    share: float


@dataclass(frozen=True, slots=True)
class ArenaView:
    arena: Arena
    columns: list[ColumnView]

    @property
    def finished(self) -> bool:
        return not any(c.streaming for c in self.columns)

    @property
    def voted(self) -> ColumnView | None:
        return next((c for c in self.columns if c.reply and c.reply.id == self.arena.vote), None)


async def arena_view(store: Database, jobs: Jobs, arena: Arena) -> ArenaView:
    """Arena as shown now: columns whose jobs run follow them, the others come from the store."""
    ids = [c.id for c in arena.columns]
    if arena.kind == "images":
        found = await store.run(lambda db: [image_results.get(db, i) for i in ids])
        shown = as_shown(jobs, [r or gone(i) for r, i in zip(found, ids, strict=True)])
        cells = [
            ColumnView(index, column.label, None, cell.running, cell)
            for index, (column, cell) in enumerate(zip(arena.columns, shown, strict=True))
        ]
        return ArenaView(arena, cells)
    steps = await store.run(lambda db: [conversations.step(db, i) for i in ids])
    columns = []
    for index, (column, step) in enumerate(zip(arena.columns, steps, strict=True)):
        running = jobs.get(column.id, ArenaJob) is not None
        if step is None:
            reply = lost_reply(column.id)
        else:
            running = running and step[1].message.status == "streaming"
            reply = ReplyView.of(*step)
        columns.append(ColumnView(index, column.label, reply, running))
    return ArenaView(arena, columns)


def comparison(view: ArenaView, first: int, second: int) -> Comparison:
    """The diff of columns `first` and `second`. InvalidInput (400) for a column the arena
    does not have; Conflict (409) while a reply is still being written."""
    n = len(view.columns)
    for index, name in ((first, "first"), (second, "second")):
        if not 0 <= index < n:
            raise InvalidInput(f"This arena has columns 0 to {n - 1}, not {index}.", name)
    if first == second:
        raise InvalidInput("Compare two different columns.", "second")
    if view.arena.kind != "chat":
        raise InvalidInput("Only the texts of a text arena can be compared word by word.", "arena")
    if not view.finished:
        raise Conflict("Wait until every reply is finished to compare them.", "arena")
    a, b = (view.columns[i].reply for i in (first, second))
    assert a is not None and b is not None  # a text arena's columns are replies
    runs = word_diff(a.text, b.text)
    return Comparison(first, second, diff_html(runs), same_share(a.text, b.text))


def grid_values(raw: str, axis: str) -> list[int]:
    """The grid's values, separated by commas or spaces: 2 to GRID_AT_MOST different seeds
    (0 to 2**63 - 1) or step counts (1 to 500)."""
    name, low, high = ("Seed", 0, 2**63 - 1) if axis == "seed" else ("Steps", 1, 500)
    values = []
    for part in re.split(r"[,\s]+", raw.strip()):
        value = integer_of(part, "values", name, low, high)
        if value is not None:
            values.append(value)
    if not 2 <= len(values) <= GRID_AT_MOST:
        raise InvalidInput(
            f"Give 2 to {GRID_AT_MOST} values for the grid, separated by commas; "
            f"there are {len(values)}.",
            "values",
        )
    if len(set(values)) != len(values):
        raise InvalidInput("Give each value of the grid once.", "values")
    return values


def cell_label(axis: str, value: int) -> str:
    return f"seed {value}" if axis == "seed" else f"{value} step{'' if value == 1 else 's'}"


def arena_template(view: ArenaView) -> HTMXTemplate:
    """The arena for #arena-result; a text arena's comparison loads once its replies end."""
    return HTMXTemplate(template_name="playground/arena.html", context={"view": view})


class ArenaController(Controller):
    path = "/ui/arena"

    @post("/", status_code=200)
    async def start(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Database
    ) -> HTMXTemplate:
        """A text arena: a conversation with the prompt and one reply per column, siblings,
        each written by its own job with the same seed."""
        settings = ArenaSettings.from_form(await request.form())
        handles = []
        for column in settings.columns:
            handle = registry.get(column.model)
            require_usable(handle, Capability.CHAT)
            handles.append(handle)
        jobs.make_room(len(settings.columns))

        def add(db: Connection) -> Arena:
            cid = conversations.create(db, "Arena: " + conversations.title_from(settings.prompt))
            user = conversations.add_message(db, cid, None, "user", settings.prompt, MessageMeta())
            columns = []
            for column in settings.columns:
                meta = MessageMeta(
                    model=column.model, parameters=column.parameters(), seed=column.seed
                )
                mid = conversations.add_message(db, cid, user, "assistant", "", meta, "streaming")
                columns.append(Column(mid, label(column)))
            arena = Arena(
                arenas.new_id(),
                "chat",
                settings.prompt,
                settings.columns[0].seed or 0,
                columns,
                settings.blind,
                conversation=cid,
            )
            arenas.add(db, arena)
            return arena

        arena = await store.run(add)
        render = renderer(request)
        for index, (handle, column) in enumerate(zip(handles, settings.columns, strict=True)):
            jobs.add(ArenaJob(render, handle, column, store, arena, index))
        return arena_template(await arena_view(store, jobs, arena))

    @post("/images", status_code=200)
    async def grid(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Database
    ) -> HTMXTemplate:
        """An image grid: one generation per seed or per step count, the rest locked."""
        form = await request.form()
        settings = ImageSettings.from_form(form)
        if not settings.prompt:
            raise InvalidInput("Describe the image you want in Prompt.", "prompt")
        axis = text(form, "axis")
        if axis not in ("seed", "steps"):
            raise InvalidInput("Vary the seed or the steps.", "axis")
        values = grid_values(text(form, "values"), axis)
        handle = registry.get(settings.model)
        require_usable(handle, Capability.IMAGE)
        fields = {**settings.fields, "n": 1}
        seed = fields.setdefault("seed", secrets.randbelow(SEED_RANGE))
        limits = handle.spec.options
        wanted = [image_request(settings.prompt, {**fields, axis: v}, limits) for v in values]
        jobs.make_room(len(values))
        aid = arenas.new_id()
        results = [
            ImageResult(
                image_results.new_id(),
                handle.name,
                settings.prompt,
                {**fields, axis: v},
                cell_label(axis, v),
            )
            for v in values
        ]
        columns = [Column(r.id, r.label) for r in results]
        arena = Arena(aid, "images", settings.prompt, seed, columns, axis=axis)
        await store.run(lambda db: arenas.add(db, arena))
        for each, result in zip(wanted, results, strict=True):
            await start_images(request, jobs, store, handle, each, result, aid)
        return arena_template(await arena_view(store, jobs, arena))

    @get("/{aid:str}")
    async def show(self, store: Database, jobs: Jobs, aid: str) -> HTMXTemplate:
        """Arena `aid` as it stands (404 if there is none)."""
        arena = await store.run(lambda db: arenas.get(db, aid))
        return arena_template(await arena_view(store, jobs, arena))

    @get("/{aid:str}/stream/{mid:str}")
    async def events(
        self, request: HTMXRequest, jobs: Jobs, store: Database, aid: str, mid: str
    ) -> ServerSentEvent:
        """A column's events; one whose job has ended answers `done` with the stored reply."""
        after = last_event_id(request.headers.get("last-event-id"))
        job = jobs.get(mid, ArenaJob)
        if job is not None and job.arena.id == aid:
            return stream(job, after)
        arena = await store.run(lambda db: arenas.get(db, aid))
        view = await arena_view(store, jobs, arena)
        column = next((c for c in view.columns if c.reply and c.reply.id == mid), None)
        if column is None:
            raise InvalidInput(f"“{mid}” is not a column of this arena.", "column")
        return closed(renderer(request)("playground/arena_column.html", arena=arena, column=column))

    @get("/{aid:str}/compare")
    async def compare(
        self,
        store: Database,
        jobs: Jobs,
        aid: str,
        first: str = Parameter(default="0", max_length=20),
        second: str = Parameter(default="1", max_length=20),
    ) -> HTMXTemplate:
        """The word diff of two finished columns (by index), and the vote."""
        a = integer_of(first, "first", "The first column", 0, COLUMNS_AT_MOST - 1) or 0
        b = integer_of(second, "second", "The second column", 0, COLUMNS_AT_MOST - 1) or 0
        arena = await store.run(lambda db: arenas.get(db, aid))
        view = await arena_view(store, jobs, arena)
        return HTMXTemplate(
            template_name="playground/arena_compare.html",
            context={"view": view, "comparison": comparison(view, a, b)},
        )

    @post("/{aid:str}/vote", status_code=200)
    async def vote(
        self, request: HTMXRequest, store: Database, jobs: Jobs, aid: str
    ) -> HTMXTemplate:
        """Keep the vote (a column's reply id, or "tie") with the arena, and reveal who is who."""
        choice = text(await request.form(), "choice")
        arena = await store.run(lambda db: arenas.get(db, aid))
        view = await arena_view(store, jobs, arena)
        if arena.kind != "chat":
            raise InvalidInput("Only a text arena has a vote.", "arena")
        if not view.finished:
            raise Conflict("Wait until every reply is finished to vote.", "choice")
        arena = await store.run(lambda db: arenas.vote(db, aid, choice))
        return arena_template(await arena_view(store, jobs, arena))

    @post("/{aid:str}/reveal", status_code=200)
    async def reveal(self, store: Database, jobs: Jobs, aid: str) -> HTMXTemplate:
        arena = await store.run(lambda db: arenas.reveal(db, aid))
        return arena_template(await arena_view(store, jobs, arena))

    @post("/{aid:str}/stop", status_code=200)
    async def stop(self, store: Database, jobs: Jobs, aid: str) -> HTMXTemplate:
        """Stop every column still running; answers once their models are free."""
        arena = await store.run(lambda db: arenas.get(db, aid))
        for column in arena.columns:
            job = jobs.get(column.id, ArenaJob) or jobs.get(column.id, ImageJob)
            if job is not None:
                await job.stop("stopped")
        return arena_template(await arena_view(store, jobs, arena))
