"""models.toml -> validated Settings; every error names the file, the model and the field."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from localoip.app.core.hosts import ANY_HOST, host_name
from localoip.app.core.memory import memory_bytes
from localoip.runtimes.catalogue import RUNTIMES, runtime_for_files
from localoip.runtimes.options import DraftModel, LlamaCppOptions, RemoteOptions
from localoip.runtimes.sources.source import Source, parse_source

CONFIG_ENV = "LOCALOIP_CONFIG"
ALLOWED_HOSTS_ENV = "LOCALOIP_ALLOWED_HOSTS"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(Exception):
    """models.toml is unreadable or invalid; the message is meant for the user."""


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 9000
    max_body_bytes: int = 64 * 1024 * 1024
    api_key_env: str = "LOCALOIP_API_KEY"  # the variable holding the API key; unset: no check
    cors_origins: list[str] = []  # browser origins allowed to call the API; empty: CORS off
    # Host names answered besides loopback ones and the bound address; ["*"]: any
    allowed_hosts: list[str] = []
    session_hours: Annotated[float, msgspec.Meta(gt=0)] = 12  # a playground sign-in lasts this
    # stored responses and chat completions; unset: the user's data folder (see app/core/store.py)
    store_path: str | None = None
    store_retention_days: Annotated[int, msgspec.Meta(ge=0)] = 30  # 0 keeps them forever
    # "eager": every model loads at start-up; "on-demand": each loads on its first request
    load: Literal["eager", "on-demand"] = "eager"
    # the budget for local models (runner processes); past it the least recently used idle
    # one unloads. max_memory: bytes, "12GiB", or a share of RAM ("75%")
    max_loaded_models: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_memory: int | str | None = None
    # seconds before a crashed runner's first restart; each further crash since the model's
    # last explicit load doubles it, up to 60 s (app/core/runners/crash.py)
    restart_delay: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    # also listen on this port, on the same host, with every route (Ollama's 11434, for clients
    # that assume it); unset: `port` only
    ollama_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    # fetch images that requests name by http(s) URL (off: a request could make the server
    # reach any address it can, see README); each fetch within these bytes and seconds
    image_urls: bool = False
    image_url_max_bytes: Annotated[int, msgspec.Meta(ge=1)] = 20 * 1024 * 1024
    image_url_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0

    def __post_init__(self) -> None:
        memory_bytes(self.max_memory)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    runtime: str
    source: Source
    options: Any  # the runtime's options Struct


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    server: ServerSettings
    models: tuple[ModelSpec, ...]


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "models.toml")


def load_settings(path: Path) -> Settings:
    """Read and validate a models.toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (pass --config or set {CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    unknown = set(data) - {"server", "models"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    try:
        server = msgspec.convert(data.get("server", {}), ServerSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: [server]: {exc}") from None
    server = hosts_from_environment(server, str(path))
    tables = data.get("models", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'models' must be an array of tables ([[models]])")
    models = tuple(_model(path, path.parent, i, table) for i, table in enumerate(tables))
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise ConfigError(f"{path}: model {model.name!r}: field 'name': used twice")
        seen.add(model.name)
    return Settings(path=path, server=server, models=with_drafts(path, models))


def split_hosts(text: str) -> list[str]:
    """`a.example, b.example` -> ["a.example", "b.example"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def with_allowed_hosts(server: ServerSettings, hosts: list[str], where: str) -> ServerSettings:
    """`server` with these allowed_hosts, each a host name, an IP address or "*"."""
    for name in hosts:
        if name != ANY_HOST and host_name(name) is None:
            raise ConfigError(
                f"{where}: allowed_hosts: {name!r} is not a host name or address (no scheme "
                "or path; '*' allows any)"
            )
    return msgspec.structs.replace(server, allowed_hosts=hosts)


def hosts_from_environment(server: ServerSettings, where: str) -> ServerSettings:
    """$LOCALOIP_ALLOWED_HOSTS (comma-separated), when set, wins over the file's list."""
    text = os.environ.get(ALLOWED_HOSTS_ENV)
    if text is None:
        return with_allowed_hosts(server, server.allowed_hosts, f"{where}: [server]")
    return with_allowed_hosts(server, split_hosts(text), f"${ALLOWED_HOSTS_ENV}")


def _model(path: Path, base: Path, index: int, table: dict[str, Any]) -> ModelSpec:
    """A model's table read into a ModelSpec; `path` names where it came from in errors, and
    relative paths (its source, its `mmproj`) resolve against the folder `base`."""
    name = table.get("name")
    where = f"{path}: model {name!r} (models[{index}])" if name else f"{path}: models[{index}]"

    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: field '{field}': {message}")

    unknown = set(table) - {"name", "runtime", "source", "options"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field (expected name, runtime, source, options)")
    for field in ("name", "runtime", "source"):
        if not isinstance(table.get(field), str):
            raise fail(field, "required, and must be a string")
    if not NAME_PATTERN.match(name):
        raise fail("name", "use letters, digits, '.', '_' or '-' (it appears in URLs)")
    runtime = table["runtime"]
    if runtime not in RUNTIMES:
        raise fail("runtime", f"{runtime!r} is not one of {sorted(RUNTIMES)}")
    try:
        source = parse_source(table["source"], base)
    except ValueError as exc:
        raise fail("source", str(exc)) from None
    if runtime == "oip" and source.kind != "url":
        raise fail("source", "the oip runtime needs the upstream's base URL, e.g. http://host:8080")
    draft = (
        table.get("options", {}).get("draft") if isinstance(table.get("options"), dict) else None
    )
    if draft is not None and not isinstance(draft, str):
        raise fail("options.draft", "the name of another llama-cpp model in models.toml")
    try:
        options = msgspec.convert(table.get("options", {}), RUNTIMES[runtime].options)
    except msgspec.ValidationError as exc:
        raise fail("options", str(exc).replace("$.", "options.")) from None
    mmproj = getattr(options, "mmproj", None)
    if mmproj is not None:
        try:
            options = msgspec.structs.replace(options, mmproj=projector_file(mmproj, base))
        except FileNotFoundError as exc:
            raise fail("options.mmproj", str(exc)) from None
    if isinstance(options, RemoteOptions) and options.model is None:
        options = msgspec.structs.replace(options, model=name)  # the upstream name defaults to ours
    return ModelSpec(name=name, runtime=runtime, source=source, options=options)


def with_drafts(path: Path, models: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
    """The models with each `draft` option resolved to the named model's source (a
    DraftModel); ConfigError naming both models when it names no model, or one that is not a
    llama-cpp chat model. A model may name itself: it then drafts for itself (which measures
    what the mechanism costs, bench/speculative.py). Whether the vocabularies agree is
    checked when the model loads, from the files."""
    named = {model.name: model for model in models}
    resolved = []
    for index, model in enumerate(models):
        name = model.options.draft_name if isinstance(model.options, LlamaCppOptions) else None
        if name is not None:
            where = f"{path}: model {model.name!r} (models[{index}]): field 'options.draft'"
            draft = named.get(name)
            if draft is None:
                raise ConfigError(
                    f"{where}: the draft {name!r} is not a model in this file "
                    f"(models: {', '.join(sorted(named))})"
                )
            chat = isinstance(draft.options, LlamaCppOptions) and not draft.options.embedding
            if not chat:
                kind = "an embedding" if draft.runtime == "llama-cpp" else f"a {draft.runtime}"
                raise ConfigError(
                    f"{where}: the draft {name!r} is {kind} model; a draft for {model.name!r} "
                    "must be a llama-cpp chat or completion model"
                )
            found = DraftModel(name, draft.source.kind, draft.source.value)
            options = msgspec.structs.replace(model.options, draft=found)
            model = dataclasses.replace(model, options=options)
        resolved.append(model)
    return tuple(resolved)


def projector_file(mmproj: str, base: Path) -> str:
    """The absolute path of an `mmproj` option (`~` expanded, relative to the folder `base`);
    FileNotFoundError naming it when no such file exists."""
    found = (base / Path(mmproj).expanduser()).resolve()
    if not found.is_file():
        raise FileNotFoundError(f"no such projector file: {found}")
    return str(found)


def detect_runtime(path: Path) -> str:
    """The runtime for a model file or folder, from the files in it (the catalogue's marks)."""
    names = [p.name for p in path.iterdir() if p.is_file()] if path.is_dir() else [path.name]
    runtime = runtime_for_files(names)
    if runtime is None:
        marks = ", ".join(mark for kind in RUNTIMES.values() for mark in kind.marks)
        raise ConfigError(
            f"{path}: cannot tell which runtime serves it (none of its files is {marks}); "
            f"pass --runtime, one of {sorted(RUNTIMES)}"
        )
    return runtime


def single_model_settings(
    model_dir: str | None,
    source: str | None,
    name: str | None,
    runtime: str | None,
    options: list[str],
) -> Settings:
    """Settings for one model, as a container serves it: the file or folder `model_dir`
    (where KServe mounts it), or a models.toml `source` such as a package baked into the image.

    `options` are KEY=VALUE with TOML values; a value that is not TOML is taken as a string.
    A relative `mmproj` is found in the model's folder (the file's own), or for a `source` in
    the working directory, and checked as models.toml's is.
    """
    if source is None:
        if model_dir is None:
            raise ConfigError("single-model mode needs --model-dir or --source")
        path = Path(model_dir).expanduser().resolve()
        if not path.exists():
            raise ConfigError(f"--model-dir {model_dir}: no such file or folder")
        where, source, runtime = path, str(path), runtime or detect_runtime(path)
        name = name or path.stem
        base = path if path.is_dir() else path.parent
    else:
        where, base = Path(f"--source {source}"), Path.cwd()
        if runtime is None or name is None:
            raise ConfigError(f"{where}: needs --runtime and --model-name")
    table: dict[str, Any] = {"name": name, "runtime": runtime, "source": source, "options": {}}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--option {option!r}: expected KEY=VALUE, e.g. n_ctx=4096")
        try:
            table["options"][key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            table["options"][key.strip()] = value
    server = hosts_from_environment(ServerSettings(), str(where))
    models = with_drafts(where, (_model(where, base, 0, table),))
    return Settings(path=where, server=server, models=models)
