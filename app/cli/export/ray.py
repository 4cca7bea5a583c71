"""Ray Serve: the Litestar app behind serve.ingress, and the `serve build` config KubeRay takes."""

from __future__ import annotations

from typing import Any

from localoip.app.cli.export import (
    ExportError,
    ExportOptions,
    check_storage,
    dump,
    models_toml,
    wants_gpu,
)
from localoip.app.core.config import ModelSpec, Settings

MODULE = "localoip_serve_app"
DEPLOYMENT = "Localoip"
HTTP_PORT = 8000
"""Ray Serve's own HTTP port."""

APP = '''\
"""localoip on Ray Serve: the Litestar ASGI app behind serve.ingress, one app per replica.

Written by `localoip export ray`. Run it on this machine with
    serve run {module}:app
or on a cluster with `serve deploy serve_config.yaml`, or put serve_config.yaml in a
KubeRay RayService's serveConfigV2. Each replica loads the models in models.toml.
"""

from pathlib import Path

from localoip.app.core.config import load_settings
from localoip.app.server import create_app
from ray import serve

CONFIG = Path(__file__).with_name("models.toml")


def build():
    """One replica's ASGI app; its lifespan loads the models. Answers name the replica."""
    asgi = create_app(load_settings(CONFIG))
    replica = serve.get_replica_context().replica_tag.encode()

    async def tagged(scope, receive, send):
        async def send_tagged(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-replica", replica)]
            await send(message)

        await asgi(scope, receive, send_tagged if scope["type"] == "http" else send)

    return tagged


@serve.deployment({settings})
@serve.ingress(build)
class {deployment}:
    """A replica: every request goes to the app `build` made."""


app = {deployment}.bind()
'''


def deployment_settings(specs: list[ModelSpec], options: ExportOptions) -> dict[str, Any]:
    """num_replicas, or autoscaling_config when min and max differ; one CPU (and GPU) each."""
    scaling = options.scaling
    if scaling.metric not in (None, "concurrency"):
        raise ExportError(
            f"--scale-metric {scaling.metric}: Ray Serve scales on concurrency "
            "(ongoing requests per replica)"
        )
    actor: dict[str, Any] = {"num_cpus": 1.0}
    if any(wants_gpu(s) for s in specs):
        actor["num_gpus"] = 1.0
    if scaling.min_replicas == scaling.max_replicas:
        replicas: dict[str, Any] = {"num_replicas": scaling.min_replicas}
    else:
        replicas = {
            "autoscaling_config": {
                "min_replicas": scaling.min_replicas,
                "max_replicas": scaling.max_replicas,
                "target_ongoing_requests": scaling.target or 2,
            }
        }
    return {**replicas, "ray_actor_options": actor}


def serve_config(settings: dict[str, Any]) -> dict[str, Any]:
    """What `serve build {MODULE}:app` writes: the config serve deploy and RayService take."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": HTTP_PORT},
        "applications": [
            {
                "name": "localoip",
                "route_prefix": "/",
                "import_path": f"{MODULE}:app",
                "runtime_env": {},
                "deployments": [{"name": DEPLOYMENT, **settings}],
            }
        ],
    }


def files(settings: Settings, options: ExportOptions) -> dict[str, str]:
    """The app module, the models.toml it serves, and serve_config.yaml."""
    check_storage(settings, options)
    if options.storage:
        raise ExportError(
            "--storage-uri is for KServe and Kubernetes; Ray replicas read each model's "
            "source as models.toml gives it"
        )
    specs = list(settings.models)
    deployment = deployment_settings(specs, options)
    arguments = ", ".join(f"{key}={value!r}" for key, value in deployment.items())
    return {
        f"{MODULE}.py": APP.format(module=MODULE, settings=arguments, deployment=DEPLOYMENT),
        "models.toml": models_toml(specs, lambda spec: str(spec.source), "ray"),
        "serve_config.yaml": dump(serve_config(deployment)),
    }
