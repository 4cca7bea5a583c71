"""`localoip export`: models.toml -> manifests for KServe, Ray Serve and plain Kubernetes.

What the targets share lives here: which models can go, where their files come from
in a cluster, the options and GPUs they ask for, and the server image's Dockerfile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec
import yaml
from localoip.app.core.config import ModelSpec, Settings
from localoip.runtimes.catalogue import RUNTIMES
from localoip.runtimes.sources.hub_ref import parse_hub_ref

PORT = 8080
"""The port the server listens on in a cluster, as KServe expects."""

MODEL_DIR = "/mnt/models"
"""Where KServe's storage initializer puts a model's files."""

REMOTE_RUNTIMES = {kind.name for kind in RUNTIMES.values() if not kind.local}
"""Runtimes whose models live on another server: nothing to deploy."""

MODEL_FORMATS = {kind.name: kind.model_format for kind in RUNTIMES.values() if kind.model_format}
"""The KServe model format of each local runtime."""

STORAGE = re.compile(r"^(hf|pvc|s3)://[^/\s]+(/\S*)?$")
K8S_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
METRICS = ("cpu", "memory", "concurrency", "rps")


class ExportError(Exception):
    """Settings that cannot be exported as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Scaling:
    """Replicas and what scales them; None means the target's own default metric and target."""

    min_replicas: int = 1
    max_replicas: int = 1
    metric: str | None = None  # cpu | memory | concurrency | rps
    target: int | None = None  # percent for cpu and memory; requests for concurrency and rps

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ExportError(f"--min-replicas must be 0 or more, got {self.min_replicas}")
        if self.max_replicas < max(self.min_replicas, 1):
            raise ExportError(
                f"--max-replicas must be at least 1 and at least --min-replicas "
                f"({self.min_replicas}), got {self.max_replicas}"
            )
        if self.metric is not None and self.metric not in METRICS:
            raise ExportError(f"--scale-metric must be one of {list(METRICS)}, got {self.metric!r}")
        if self.target is not None and self.target < 1:
            raise ExportError(f"--scale-target must be 1 or more, got {self.target}")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    image: str = f"localoip:{version('localoip')}"
    scaling: Scaling = Scaling()
    storage: dict[str, str] = field(default_factory=dict)  # model name -> storage URI


def parse_storage(pairs: list[str]) -> dict[str, str]:
    """`--storage-uri NAME=URI` flags as a dict; URIs are hf://, pvc:// or s3://."""
    storage: dict[str, str] = {}
    for pair in pairs:
        name, equals, uri = pair.partition("=")
        if not equals or not name:
            raise ExportError(f"--storage-uri {pair!r}: expected MODEL=URI, e.g. a=pvc://models/a")
        if not STORAGE.match(uri):
            raise ExportError(f"--storage-uri {pair!r}: the URI must be hf://, pvc:// or s3://")
        storage[name] = uri
    return storage


def check_storage(settings: Settings, options: ExportOptions) -> None:
    """--storage-uri must name configured models."""
    names = {spec.name for spec in settings.models}
    unknown = sorted(set(options.storage) - names)
    if unknown:
        raise ExportError(
            f"--storage-uri names unknown model(s) {unknown}; the models are {sorted(names)}"
        )


def local_models(settings: Settings, options: ExportOptions) -> list[ModelSpec]:
    """The models that run in the cluster, one service each: remote ones are skipped, and
    names must be Kubernetes names."""
    check_storage(settings, options)
    specs = [s for s in settings.models if s.runtime not in REMOTE_RUNTIMES]
    for spec in specs:
        if not K8S_NAME.match(spec.name):
            raise ExportError(
                f"model {spec.name!r}: a Kubernetes name needs lowercase letters, digits and "
                "'-', starting with a letter (at most 63); rename it in models.toml"
            )
    return specs


def storage_uri(spec: ModelSpec, options: ExportOptions) -> str | None:
    """Where a cluster fetches the model from; None for packages baked into the image and
    for GGUFs chosen by quant, which the pod fetches itself from its `--source`."""
    if spec.name in options.storage:
        return options.storage[spec.name]
    source = spec.source
    if source.kind == "pypi":
        return None
    if source.kind == "hf":
        ref = parse_hub_ref(source.value)
        if RUNTIMES[spec.runtime].one_gguf and ref.path is None:
            return None  # a quant the pod picks and fetches itself: the whole repo is too much
        return f"hf://{ref.repo_id}" + (f":{ref.revision}" if ref.revision else "")
    raise ExportError(
        f"model {spec.name!r} comes from {source}, which a cluster cannot read; copy it to a "
        f"volume or a bucket and pass --storage-uri {spec.name}=pvc://<claim>/<path> "
        "(or s3://<bucket>/<path>)"
    )


def hf_file(spec: ModelSpec, options: ExportOptions) -> str | None:
    """The file inside a Hugging Face repository that an `hf:owner/repo/file` source names."""
    if spec.name in options.storage or spec.source.kind != "hf":
        return None
    return parse_hub_ref(spec.source.value).path


def changed_options(spec: ModelSpec) -> dict[str, Any]:
    """The model's options that differ from its runtime's defaults, by models.toml name."""
    given = msgspec.to_builtins(spec.options)
    default = msgspec.to_builtins(type(spec.options)())
    if isinstance(given.get("draft"), dict):  # resolved by config: written as its name again
        given["draft"] = given["draft"]["name"]
    return {key: value for key, value in given.items() if default.get(key) != value}


def option_args(spec: ModelSpec) -> list[str]:
    """`--option=KEY=VALUE` for each changed option; JSON values, which TOML reads alike.
    ExportError for a model that drafts with another (one model a container)."""
    draft = getattr(spec.options, "draft_name", None)
    if draft not in (None, spec.name):
        raise ExportError(
            f"model {spec.name!r} drafts with model {draft!r}, which its own container cannot "
            'load: export it with speculative = "ngram" or "off", or as its own draft'
        )
    return [
        f"--option={key}={msgspec.json.encode(value).decode()}"
        for key, value in changed_options(spec).items()
    ]


def models_toml(specs: list[ModelSpec], source: Callable[[ModelSpec], str], by: str) -> str:
    """A models.toml for the given models, with each source as `source` gives it."""
    lines = [
        f"# Written by `localoip export {by}`.",
        "",
        "[server]",
        'allowed_hosts = ["*"]  # clients reach it by the cluster\'s names, through its proxy',
    ]
    for spec in specs:
        lines += [
            "",
            "[[models]]",
            f"name = {json.dumps(spec.name)}",
            f"runtime = {json.dumps(spec.runtime)}",
            f"source = {json.dumps(source(spec))}",
        ]
        changed = changed_options(spec)
        if changed:
            lines.append("[models.options]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in changed.items()]
    return "\n".join(lines) + "\n"


def wants_gpu(spec: ModelSpec) -> bool:
    """Whether the model asks for a GPU: a number of layers offloaded, or a CUDA device.

    "auto", the default, uses a GPU only where there is one, so it asks for none."""
    options = spec.options
    layers = getattr(options, "n_gpu_layers", 0)
    device = str(getattr(options, "device", ""))
    return (isinstance(layers, int) and layers != 0) or device.startswith("cuda")


def resources(gpu: bool) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": "1", "memory": "2Gi"}
    limits: dict[str, Any] = {"memory": "8Gi"}
    if gpu:
        limits["nvidia.com/gpu"] = "1"
    return {"requests": requests, "limits": limits}


def probes() -> dict[str, Any]:
    """HTTP readiness and liveness probes on the OIP health routes."""
    return {
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": PORT},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": PORT},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
    }


SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
"""The server container runs as the image's unprivileged user."""


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors for repeated values, multi-line text as blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_Dumper.add_representer(str, _text)


def dump(*documents: dict[str, Any]) -> str:
    """YAML documents, keys in the order written."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


DOCKERFILE = """\
# localoip's server image. Build it from a localoip source folder:
#   docker build -t {image} -f path/to/this/Dockerfile path/to/localoip
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# A portable llama.cpp build (no -march=native) without the multimodal part; CPU torch.
ENV CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
RUN python -m venv /opt/localoip \\
    && /opt/localoip/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu '.[all]'

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \\
    && rm -rf /var/lib/apt/lists/* \\
    && useradd --uid 1000 --create-home localoip
COPY --from=build /opt/localoip /opt/localoip
ENV PATH=/opt/localoip/bin:$PATH HF_HOME=/home/localoip/.cache/hf
USER 1000
WORKDIR /home/localoip
EXPOSE {port}
# The OIP routes at /v2, the OpenAI routes at /v1 and, as KServe clients expect, /openai/v1.
ENTRYPOINT ["localoip"]
CMD ["serve", "--model-dir", "{model_dir}", "--host", "0.0.0.0", "--port", "{port}"]
"""


def dockerfile(options: ExportOptions) -> str:
    return DOCKERFILE.format(image=options.image, port=PORT, model_dir=MODEL_DIR)


def write(out: Path, files: dict[str, str]) -> list[Path]:
    """Write the files into `out` (made if missing); the paths written."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
