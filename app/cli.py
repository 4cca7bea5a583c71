"""The `localoip` command: `serve` and `models`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from localoip.app.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    default_config_path,
    load_settings,
)


def _settings(path: str | None) -> Settings:
    try:
        return load_settings(Path(path) if path else default_config_path())
    except ConfigError as exc:
        sys.exit(f"localoip: {exc}")


def _log_to_stderr() -> None:
    """Our own handler: libraries that reconfigure the root logger must not restyle our lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     localoip: %(message)s"))
    log = logging.getLogger("localoip")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # remote runtimes: one line per call


def serve(args: argparse.Namespace) -> None:
    settings = _settings(args.config)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    # On a busy 2-core laptop, spinning OpenMP threads can slow inference tenfold.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _log_to_stderr()
    import uvicorn
    from localoip.app.main import create_app

    logging.getLogger("localoip").info(
        "serving %d model(s) from %s on http://%s:%d",
        len(settings.models),
        settings.path,
        host,
        port,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def models(args: argparse.Namespace) -> None:
    from localoip.runtimes.sources import is_present

    settings = _settings(args.config)
    rows = [("NAME", "RUNTIME", "SOURCE", "PRESENT")]
    for spec in settings.models:
        present, detail = is_present(spec.source)
        rows.append(
            (
                spec.name,
                spec.runtime,
                str(spec.source),
                f"yes  {detail}" if present else f"no   {detail}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3]
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="localoip", description="A local inference server.")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"models.toml to use (default: ${CONFIG_ENV} or ./models.toml)"

    serve_cmd = commands.add_parser("serve", help="serve the configured models")
    serve_cmd.add_argument("--config", help=config_help)
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to bind (default 9000)")
    serve_cmd.set_defaults(run=serve)

    models_cmd = commands.add_parser("models", help="list configured models and their sources")
    models_cmd.add_argument("--config", help=config_help)
    models_cmd.set_defaults(run=models)

    args = parser.parse_args(argv)
    args.run(args)
