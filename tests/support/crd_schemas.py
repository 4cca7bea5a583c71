"""Strict offline validation of custom resources against their CRD's openAPIV3Schema.

The API server silently drops fields a CRD does not know, so these checks make unknown
fields errors: an object with `properties` and no x-kubernetes-preserve-unknown-fields
gets additionalProperties: false, and x-kubernetes-int-or-string becomes integer-or-string.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_FILES = {
    "InferenceService": "serving.kserve.io_inferenceservices.yaml.gz",
    "ServingRuntime": "serving.kserve.io_servingruntimes.yaml.gz",
    "ClusterServingRuntime": "serving.kserve.io_clusterservingruntimes.yaml.gz",
}


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema in which unknown fields are errors."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema:
        out["properties"] = {name: strict(s) for name, s in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


@cache
def validator(crds: Path, kind: str, version: str) -> jsonschema.Draft7Validator:
    """The strict validator of one kind at one version, from the CRD file in `crds`."""
    with gzip.open(crds / CRD_FILES[kind]) as file:
        crd = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 4x
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return jsonschema.Draft7Validator(strict(served["schema"]["openAPIV3Schema"]))
    raise LookupError(f"{kind} has no version {version}")


def errors(crds: Path, manifest: dict[str, Any]) -> list[str]:
    """What is wrong with a manifest, each as `path: message`; empty when it is valid."""
    version = manifest["apiVersion"].rpartition("/")[2]
    check = validator(crds, manifest["kind"], version)
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in check.iter_errors(manifest)
    )
