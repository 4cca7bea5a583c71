"""KServe: one ServingRuntime named localoip, and one InferenceService per model."""

from __future__ import annotations

from typing import Any

from localoip.app.cli.export import (
    MODEL_DIR,
    MODEL_FORMATS,
    PORT,
    SECURITY,
    ExportOptions,
    dockerfile,
    dump,
    hf_file,
    local_models,
    option_args,
    probes,
    resources,
    storage_uri,
    wants_gpu,
)
from localoip.app.core.config import ModelSpec, Settings

RUNTIME_NAME = "localoip"


def serving_runtime(options: ExportOptions) -> dict[str, Any]:
    """The runtime every localoip InferenceService runs: `localoip serve` on one model."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": RUNTIME_NAME},
        "spec": {
            "supportedModelFormats": [
                {"name": name, "version": "1", "autoSelect": True}
                for name in MODEL_FORMATS.values()
            ],
            "protocolVersions": ["v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": options.image,
                    "command": ["localoip"],
                    "args": [
                        "serve",
                        "--model-name={{.Name}}",
                        f"--model-dir={MODEL_DIR}",
                        "--host=0.0.0.0",
                        "--allowed-hosts=*",  # reached by the cluster's names
                        f"--port={PORT}",
                    ],
                    "ports": [{"containerPort": PORT, "protocol": "TCP"}],
                    **probes(),
                    "securityContext": SECURITY,
                    "resources": resources(gpu=False),
                }
            ],
        },
    }


def inference_service(spec: ModelSpec, options: ExportOptions) -> dict[str, Any]:
    """One model on the localoip runtime; its runtime and options travel as extra args."""
    scaling = options.scaling
    args = [f"--runtime={spec.runtime}", *option_args(spec)]  # appended to the runtime's
    file = hf_file(spec, options)
    if file:
        args.append(f"--model-dir={MODEL_DIR}/{file}")  # later flags win over the runtime's
    model: dict[str, Any] = {
        "runtime": RUNTIME_NAME,
        "modelFormat": {"name": MODEL_FORMATS[spec.runtime]},
        "protocolVersion": "v2",
    }
    uri = storage_uri(spec, options)
    if uri:
        model["storageUri"] = uri
    else:  # a package baked into the image: no storage to mount
        args.append(f"--source={spec.source}")
    model["args"] = args
    model["resources"] = resources(wants_gpu(spec))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/part-of": "localoip"}},
        "spec": {
            "predictor": {
                "minReplicas": scaling.min_replicas,
                "maxReplicas": scaling.max_replicas,
                "scaleMetric": scaling.metric or "cpu",
                "scaleTarget": scaling.target or 80,
                "model": model,
            }
        },
    }


def files(settings: Settings, options: ExportOptions) -> dict[str, str]:
    """servingruntime.yaml, one inferenceservice-<model>.yaml per model, and the Dockerfile."""
    out = {"servingruntime.yaml": dump(serving_runtime(options))}
    for spec in local_models(settings, options):
        out[f"inferenceservice-{spec.name}.yaml"] = dump(inference_service(spec, options))
    out["Dockerfile"] = dockerfile(options)
    return out
