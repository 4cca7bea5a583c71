"""A model's file digest, for run cards: SHA-256 of the file its source names on this machine
(of every file, with its relative path, for a folder), kept while the file is unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

from localoip.app.core.config import ModelSpec
from localoip.runtimes.sources.source import is_present

CHUNK = 1 << 20

_known: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def _stamp(path: Path) -> tuple[str, int, int]:
    """What says a file is unchanged without reading it: path, size and change time (ns)."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_ctime_ns


def _file_digest(path: Path) -> str:
    found = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            found.update(block)
    return found.hexdigest()


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, or of a folder's files (sorted by relative path, each path
    then its bytes). Blocking: run it off the event loop. Raises OSError if unreadable."""
    if path.is_file():
        stamp = _stamp(path)
        with _lock:
            known = _known.get(stamp)
        if known is None:
            known = f"sha256:{_file_digest(path)}"
            with _lock:
                _known[stamp] = known
        return known
    folder = hashlib.sha256()
    for part in sorted(p for p in path.rglob("*") if p.is_file()):
        folder.update(str(part.relative_to(path)).encode() + b"\0")
        folder.update(file_digest(part).encode() + b"\0")
    return f"sha256:{folder.hexdigest()}"


def model_digest(spec: ModelSpec) -> str | None:
    """The digest of the model's files as they are on disk now; None for a remote model or
    files that are not here. Blocking (a first read of a large file takes about a second)."""
    if spec.source.kind == "url":
        return None
    present, where = is_present(spec.source, spec.runtime)
    if not present:
        return None
    try:
        return file_digest(Path(where))
    except OSError:
        return None


def reading_digest(spec: ModelSpec) -> asyncio.Future[str | None]:
    """`model_digest` on a worker thread, started now (in a running event loop): jobs start
    it as they begin, so it is read while the model works; await the future for the digest."""
    return asyncio.ensure_future(asyncio.to_thread(model_digest, spec))
