"""Plain Kubernetes, for clusters without KServe: a ConfigMap, Deployment, Service and HPA."""

from __future__ import annotations

from typing import Any

from localoip.app.cli.export import (
    PORT,
    SECURITY,
    ExportError,
    ExportOptions,
    check_storage,
    dockerfile,
    dump,
    models_toml,
    probes,
    resources,
    wants_gpu,
)
from localoip.app.core.config import ModelSpec, Settings

NAME = "localoip"
LABELS = {"app.kubernetes.io/name": NAME}
CONFIG_DIR = "/etc/localoip"
PVC_ROOT = "/mnt/pvc"


def cluster_source(spec: ModelSpec, options: ExportOptions) -> str:
    """The model's source as the pod sees it: packages and hubs as they are, PVCs mounted."""
    uri = options.storage.get(spec.name)
    if uri is None:
        if spec.source.kind == "path":
            raise ExportError(
                f"model {spec.name!r} comes from {spec.source}, which the cluster cannot read; "
                f"copy it to a volume and pass --storage-uri {spec.name}=pvc://<claim>/<path>"
            )
        return str(spec.source)
    scheme, _, rest = uri.partition("://")
    if scheme == "pvc":
        return f"{PVC_ROOT}/{rest}"
    if scheme == "hf":
        return f"hf:{rest}"
    raise ExportError(
        f"--storage-uri {spec.name}={uri}: plain Kubernetes has no storage initializer for "
        f"{scheme}://; use `localoip export kserve`, or copy the model to a PVC"
    )


def claims(options: ExportOptions) -> list[str]:
    """The PVCs named by --storage-uri pvc://<claim>/..., each mounted once."""
    found = []
    for uri in options.storage.values():
        if uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/")[0]
            if claim not in found:
                found.append(claim)
    return found


def deployment(specs: list[ModelSpec], options: ExportOptions) -> dict[str, Any]:
    pvcs = claims(options)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": NAME}},
        {"name": "cache", "emptyDir": {}},
        *(
            {"name": f"pvc-{c}", "persistentVolumeClaim": {"claimName": c, "readOnly": True}}
            for c in pvcs
        ),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "cache", "mountPath": "/home/localoip/.cache"},
        *({"name": f"pvc-{c}", "mountPath": f"{PVC_ROOT}/{c}", "readOnly": True} for c in pvcs),
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "replicas": options.scaling.min_replicas,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 1000},
                    "containers": [
                        {
                            "name": NAME,
                            "image": options.image,
                            "command": ["localoip"],
                            "args": [
                                "serve",
                                f"--config={CONFIG_DIR}/models.toml",
                                "--host=0.0.0.0",
                                f"--port={PORT}",
                            ],
                            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                            **probes(),
                            "securityContext": SECURITY,
                            "resources": resources(any(wants_gpu(s) for s in specs)),
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "selector": LABELS,
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(options: ExportOptions) -> dict[str, Any]:
    scaling = options.scaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": scaling.metric or "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target or 80,
                        },
                    },
                }
            ],
        },
    }


def files(settings: Settings, options: ExportOptions) -> dict[str, str]:
    """configmap.yaml (the models.toml), deployment.yaml, service.yaml, hpa.yaml, Dockerfile."""
    scaling = options.scaling
    if scaling.metric not in (None, "cpu", "memory"):
        raise ExportError(
            f"--scale-metric {scaling.metric}: a plain HPA scales on cpu or memory; "
            "concurrency and rps need KServe (or Ray Serve)"
        )
    if scaling.min_replicas < 1:
        raise ExportError("--min-replicas must be 1 or more: a plain HPA cannot scale to zero")
    check_storage(settings, options)
    specs = list(settings.models)
    toml = models_toml(specs, lambda spec: cluster_source(spec, options), "k8s")
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "labels": LABELS},
        "data": {"models.toml": toml},
    }
    return {
        "configmap.yaml": dump(config),
        "deployment.yaml": dump(deployment(specs, options)),
        "service.yaml": dump(service()),
        "hpa.yaml": dump(autoscaler(options)),
        "Dockerfile": dockerfile(options),
    }
