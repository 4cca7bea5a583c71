"""Fetch an `hf:` source through huggingface_hub: only the files its runtime needs, each
checked against the hub's sha256, with progress per file.

huggingface_hub does the HTTP: `http_get` resumes with a Range request when the connection
drops mid-file (five attempts). We add the choice of files (hub_files.py), the sha256 check
the library leaves out, progress that names the file, and a partial file that outlives the
process: since 1.x, `hf_hub_download` writes to a temporary file of its own process and
deletes it on failure, so a download stopped by a server's end or a lost network started
again from zero. An LFS file therefore downloads into `blobs/<sha256>.incomplete` in the
cache, resumed from its size on the next try, under the library's own lock for that blob;
checked, it becomes `blobs/<sha256>`, where `hf_hub_download` finds it and only links it
into the snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from huggingface_hub.file_download import http_get, repo_folder_name
from huggingface_hub.hf_api import BlobLfsInfo
from huggingface_hub.utils import WeakFileLock, build_hf_headers
from localoip.runtimes.catalogue import RUNTIMES, runtime_for_files
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.hub_files import (
    PROJECTOR,
    GgufModel,
    choose_gguf,
    choose_projector,
    folder_files,
)
from localoip.runtimes.sources.hub_ref import HubRef
from tqdm import tqdm

log = logging.getLogger("localoip")


class NotCached(SourceError):
    """The source's files are not all in the local Hugging Face cache."""


@dataclass(frozen=True, slots=True)
class FileProgress:
    """How far one file's download has got; `total` is None when the hub gave no size."""

    filename: str
    done: int
    total: int | None


ProgressCallback = Callable[[FileProgress], None]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source on this machine: what the runtime loads, and every file it came with."""

    path: str  # the GGUF (the first part of a split one), or the snapshot folder
    files: tuple[str, ...]  # local paths of every file fetched for it
    chosen: str  # which files were chosen, and why, in words
    projector: str | None = None  # the local image projector (mmproj) fetched beside a GGUF


def fetch(
    ref: HubRef,
    runtime: str | None,
    *,
    local_only: bool,
    progress: ProgressCallback | None = None,
    show_bars: bool = False,
) -> Fetched:
    """The files `ref` names for `runtime` (None: told by the files), downloaded if need be.

    With `local_only`, only the cache is read, and NotCached says when it falls short.
    Raises SourceError (with the hub's reason) when the hub refuses or a file is corrupt.
    """
    if local_only:
        return _from_cache(ref, runtime)
    try:
        info = HfApi().model_info(ref.repo_id, revision=ref.revision, files_metadata=True)
    except HfHubHTTPError as exc:
        raise SourceError(f"{ref}: the hub refused the listing: {_first_line(exc)}") from None
    lfs = {s.rfilename: s.lfs for s in info.siblings or [] if s.lfs}
    names, chosen, first = _select(ref, runtime, [s.rfilename for s in info.siblings or []])
    local = [_download(ref, name, info.sha, lfs.get(name), progress, show_bars) for name in names]
    return _fetched(local, names, first, chosen)


def _select(ref: HubRef, runtime: str | None, files: list[str]) -> tuple[list[str], str, str]:
    """The files to fetch, a sentence saying which and why, and the one the runtime loads
    ('' for a folder)."""
    runtime = runtime or repository_runtime(ref, files)
    if runtime is None:
        raise SourceError(f"{ref}: cannot tell which runtime its files are for; pass --runtime")
    if RUNTIMES[runtime].one_gguf:
        model = choose_gguf(ref, files)
        projector = choose_projector(files, model)
        if projector is None:
            return list(model.files), _why(ref, model), model.first
        why = f"{_why(ref, model)}, with the image projector {projector}"
        return [*model.files, projector], why, model.first
    if ref.path is not None:
        if ref.path not in files:
            raise SourceError(f"{ref}: the repository has no file {ref.path!r}")
        return [ref.path], ref.path, ref.path
    names = folder_files(runtime, files)
    if not names:
        raise SourceError(f"{ref}: the repository has no files the {runtime} runtime reads")
    return names, f"{len(names)} files for {runtime}", ""


def repository_runtime(ref: HubRef, files: list[str]) -> str | None:
    """The runtime a repository's files are for, when none is given (`localoip pull`): the
    file the source names, or a quant tag (which names a GGUF), tells first."""
    named = f"{ref.quant}.gguf" if ref.quant else ref.path
    return (named and runtime_for_files([named])) or runtime_for_files(files)


def _why(ref: HubRef, model: GgufModel) -> str:
    parts = f" and its {len(model.files) - 1} other parts" if len(model.files) > 1 else ""
    if ref.path:
        reason = "the file named"
    elif ref.quant:
        reason = f"quant {model.quant}"
    elif model.quant == "Q4_K_M":
        reason = "the default quant, Q4_K_M"
    else:
        reason = "the repository's only GGUF"
    return f"{model.first}{parts} ({reason})"


def _from_cache(ref: HubRef, runtime: str | None) -> Fetched:
    try:
        folder = Path(snapshot_download(ref.repo_id, revision=ref.revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise NotCached(f"{ref} is not in the local Hugging Face cache") from None
    present = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    try:
        names, chosen, first = _select(ref, runtime, present)
    except SourceError as exc:
        raise NotCached(f"{ref} is not in the local Hugging Face cache ({exc})") from None
    return _fetched([str(folder / name) for name in names], names, first, chosen)


def _fetched(local: list[str], names: list[str], first: str, chosen: str) -> Fetched:
    if first:
        path = local[names.index(first)]
        projectors = [
            local[i]
            for i, name in enumerate(names)
            if name != first and PROJECTOR.search(PurePosixPath(name).name)
        ]
        return Fetched(path, tuple(local), chosen, projectors[0] if projectors else None)
    else:  # a folder: the snapshot that holds every file
        depth = len(PurePosixPath(names[0]).parts)
        path = str(Path(local[0]).parents[depth - 1])
    return Fetched(path, tuple(local), chosen)


def _download(
    ref: HubRef,
    name: str,
    commit: str | None,
    lfs: BlobLfsInfo | None,
    progress: ProgressCallback | None,
    show_bars: bool,
) -> str:
    """One file into the cache, and its path there; an LFS file resumes a partial download
    and is checked against its sha256 before it enters the cache."""
    bar = progress_bar(name, progress, show_bars)
    try:
        if lfs is not None and commit is not None:
            _fetch_blob(ref, name, commit, lfs, bar)
        return hf_hub_download(ref.repo_id, name, revision=ref.revision, tqdm_class=bar)
    except (HfHubHTTPError, OSError) as exc:
        raise SourceError(f"{ref}: {name} could not be downloaded: {_first_line(exc)}") from None


def _fetch_blob(ref: HubRef, name: str, commit: str, lfs: BlobLfsInfo, bar: type[tqdm]) -> None:
    """Make `blobs/<sha256>` of the cache hold the file, resuming `<sha256>.incomplete`."""
    folder = repo_folder_name(repo_id=ref.repo_id, repo_type="model")
    blob = Path(constants.HF_HUB_CACHE) / folder / "blobs" / lfs.sha256
    lock = Path(constants.HF_HUB_CACHE) / ".locks" / folder / f"{lfs.sha256}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        if blob.exists():
            return
        partial = blob.with_name(f"{lfs.sha256}.incomplete")
        had = partial.stat().st_size if partial.exists() else 0
        if had > lfs.size:  # not a prefix of this file: start again
            partial.unlink()
            had = 0
        if had:
            log.info("%s: %s: resuming from %d of %d bytes", ref, name, had, lfs.size)
        # Unbuffered, and reported from the file itself: what the progress says is on disk,
        # even if the process is killed the next moment.
        written = type(bar.__name__, (bar,), {"reports_writes": True, "latest": None})
        with partial.open("ab", buffering=0) as file:
            http_get(
                hf_hub_url(ref.repo_id, name, revision=commit),
                _Written(file, written),
                resume_size=had,
                headers=build_hf_headers(),
                expected_size=lfs.size,
                displayed_filename=name,
                tqdm_class=written,
            )
        verify(partial, lfs.sha256, f"{ref}: {name}")
        os.replace(partial, blob)


class _Written:
    """The partial file as huggingface_hub's `http_get` writes it, reporting after each write
    how many bytes the file holds. `http_get` advances its bar before it writes a chunk, so a
    process killed in between would have reported 10 MiB it never wrote."""

    def __init__(self, file: Any, bar: Any) -> None:
        self._file = file
        self._bar = bar

    def write(self, data: bytes) -> int:
        count = self._file.write(data)
        if self._bar.latest is not None:
            self._bar.latest.on_disk(self._file.tell())
        return count

    def __getattr__(self, name: str) -> Any:  # seek, tell, truncate: the file's own
        return getattr(self._file, name)


def verify(path: Path, sha256: str, what: str) -> None:
    """Check a downloaded file against the hub's sha256; a corrupt one is deleted, so the next
    try downloads it from the start."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        raise SourceError(
            f"{what} is corrupt: its sha256 is {digest.hexdigest()}, the hub says {sha256}; "
            "the damaged file was deleted, so the next try downloads it again"
        )


def progress_bar(name: str, report: ProgressCallback | None, show: bool) -> type[tqdm]:
    """A tqdm class for huggingface_hub's `tqdm_class`: a bar named after the file when
    `show`, and each update handed to `report`."""

    class FileBar(tqdm):
        reports_writes = False  # the file being written reports instead (see _Written)
        latest: FileBar | None = None

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["desc"] = PurePosixPath(name).name
            kwargs["disable"] = not show
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)
            self.size = kwargs.get("total")
            type(self).latest = self
            self._report()

        def update(self, n: float | None = 1) -> bool | None:
            if not self.reports_writes:
                self.done += int(n or 0)
                self._report()
            return super().update(n)

        def on_disk(self, size: int) -> None:
            self.done = size
            self._report()

        def _report(self) -> None:
            if report is not None:
                report(FileProgress(name, self.done, self.size))  # type: ignore[arg-type]

    return FileBar


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
