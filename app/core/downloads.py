"""Downloads the server does by itself: a model's `hf:` source fetched before its runner starts,
on a thread of its own, with progress that the repository index, /v1/models, the playground's
Models tab and the log show.

Each model downloads on its own thread, so one model's download never holds back another
model's readiness; the runner is then given the local path, and never downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from localoip.runtimes.loading import with_projector
from localoip.runtimes.sources.source import Source, fetch_hub, resolve_files
from tqdm import tqdm

if TYPE_CHECKING:
    from localoip.app.core.config import ModelSpec
    from localoip.runtimes.sources.hub_download import Fetched, FileProgress

log = logging.getLogger("localoip")
T = TypeVar("T")
LOG_EVERY = 5.0
"""Seconds between two progress lines in the log while a download runs."""


@dataclass(frozen=True, slots=True)
class DownloadStatus:
    """How far a model's download has got, over the files it has started so far."""

    file: str  # the file being downloaded now, as the repository names it
    files: int  # files started so far
    done: int  # bytes downloaded (a resumed file counts what it had already)
    total: int | None  # bytes of the files started so far; None while a size is unknown
    bytes_per_second: float  # the average since this download started
    seconds_left: float | None  # at that speed, for the files started so far

    @property
    def percent(self) -> float | None:
        return 100 * self.done / self.total if self.total else None

    def words(self) -> str:
        """In words, as in `tiny-Q4_K_M.gguf: 3.1MB of 12.6MB (25%), 1.2MB/s, 8 s left`."""
        size = tqdm.format_sizeof
        text = f"{self.file}: {size(self.done, 'B')}"
        if self.total:
            text += f" of {size(self.total, 'B')} ({self.percent:.0f}%)"
        text += f", {size(self.bytes_per_second, 'B')}/s"
        if self.seconds_left is not None:
            text += f", {self.seconds_left:.0f} s left"
        return text


class Download:
    """One model's download: fed by huggingface_hub's progress on the download thread, read
    by the server's routes on the event loop."""

    def __init__(self) -> None:
        self._files: dict[str, FileProgress] = {}
        self._current = ""
        self.started = time.monotonic()
        self._first: dict[str, int] = {}  # bytes a file already had when it (re)started
        self._lock = threading.Lock()

    def __call__(self, progress: FileProgress) -> None:
        with self._lock:
            self._first.setdefault(progress.filename, progress.done)
            self._files[progress.filename] = progress
            self._current = progress.filename

    def files(self) -> list[FileProgress]:
        """Each file's progress so far, in the order they started."""
        with self._lock:
            return list(self._files.values())

    def status(self) -> DownloadStatus | None:
        """None until a byte is asked for (a source already here downloads nothing)."""
        with self._lock:
            files = list(self._files.values())
            fetched = sum(p.done - self._first[p.filename] for p in files)
        if not files:
            return None
        done = sum(p.done for p in files)
        total = None if any(p.total is None for p in files) else sum(p.total or 0 for p in files)
        speed = fetched / max(time.monotonic() - self.started, 1e-3)
        left = (total - done) / speed if total is not None and speed > 0 else None
        return DownloadStatus(self._current, len(files), done, total, speed, left)


class Downloading(Protocol):
    """A model whose source may be on its way (a ModelHandle, or its Supervisor)."""

    @property
    def download(self) -> Download | None: ...


def download_status(model: Downloading) -> DownloadStatus | None:
    """How far the model's download has got, while one runs."""
    download = model.download
    return download.status() if download is not None else None


class Fetching(Protocol):
    """Where a download in progress is shown while it runs (a Supervisor)."""

    spec: ModelSpec
    download: Download | None


async def local_source(supervisor: Fetching) -> ModelSpec:
    """The model's spec with its source on this machine: an `hf:` source is fetched first
    (from the cache when it is there), its progress on `supervisor.download` meanwhile, and
    logged every LOG_EVERY seconds. Raises SourceError, as resolve() does."""
    spec = supervisor.spec
    if spec.source.kind != "hf":
        return spec
    download = supervisor.download = Download()
    reporter = asyncio.create_task(_report(spec, download))
    try:
        path, projector = await _on_own_thread(
            f"download-{spec.name}",
            lambda: resolve_files(spec.source, spec.runtime, progress=download),
        )
    finally:
        reporter.cancel()
        supervisor.download = None
    status = download.status()
    if status is not None:
        log.info(
            "model %r: downloaded %s: %d file(s), %s in %.1f s",
            spec.name,
            spec.source,
            status.files,
            tqdm.format_sizeof(status.done, "B"),
            time.monotonic() - download.started,
        )
    options = with_projector(spec.options, projector, spec.name)
    return dataclasses.replace(spec, source=Source("path", path), options=options)


def pull(source: Source, runtime: str | None, download: Download) -> asyncio.Future[Fetched]:
    """An `hf:` source's files, the hub asked first (as `localoip pull` asks it), downloaded
    on a thread of its own with their progress on `download`. Raises SourceError."""
    return _on_own_thread(
        f"pull-{source.value}",
        lambda: fetch_hub(source, runtime, progress=download, refresh=True),
    )


def _on_own_thread(name: str, fn: Callable[[], T]) -> asyncio.Future[T]:
    """fn() on a daemon thread of its own: a server that stops mid-download exits at once
    instead of waiting for the file, whose partial download the next start resumes."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the load was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result, error = None, None
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting load, raised there
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


async def _report(spec: ModelSpec, download: Download) -> None:
    """A progress line in the log every LOG_EVERY seconds, from the first byte on."""
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(LOG_EVERY if download.status() else 0.2)
            status = download.status()
            if status is not None:
                log.info("model %r: downloading %s: %s", spec.name, spec.source, status.words())
