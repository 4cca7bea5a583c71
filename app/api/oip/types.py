"""OIP (KServe v2) wire types as msgspec Structs."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from localoip.app.core.downloads import DownloadStatus
from localoip.app.core.runners.crash import RunnerStatus

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]


class RequestInput(msgspec.Struct, kw_only=True):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] = {}
    data: Any = None


class RequestOutput(msgspec.Struct, kw_only=True):
    name: str
    parameters: dict[str, Any] = {}


class InferenceRequest(msgspec.Struct, kw_only=True):
    inputs: list[RequestInput]
    id: str | None = None
    parameters: dict[str, Any] = {}
    outputs: list[RequestOutput] | None = None


class ResponseOutput(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferenceResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    model_name: str
    outputs: list[ResponseOutput]
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None


class MetadataTensor(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelMetadata(msgspec.Struct, kw_only=True):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any]


class ServerMetadata(msgspec.Struct, kw_only=True):
    name: str
    version: str
    extensions: list[str]


class RepositoryIndexRequest(msgspec.Struct, kw_only=True):
    ready: bool = False


class RepositoryModel(msgspec.Struct, kw_only=True):
    name: str
    version: str
    state: str
    reason: str
    runner: RunnerStatus | None = None  # a local model's process: pid, restarts, last crash
    context_length: int | None = None  # tokens per sequence in use; see app/core/model_facts.py
    max_model_len: int | None = None  # the same, by vLLM's name
    max_context_length: int | None = None  # the most the model was trained for
    context_sized: str | None = None  # how n_ctx = "auto" chose context_length
    quantization: str | None = None
    file_size: int | None = None  # bytes on disk
    vision: bool = False  # its chats read images (an mmproj)
    download: DownloadStatus | None = None  # how far its hf: source has got, while it downloads


class GenerateRequest(msgspec.Struct, kw_only=True):
    text_input: str
    parameters: dict[str, Any] = {}


class GenerateResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    model_name: str
    text_output: str
    model_version: str | None = None
    details: dict[str, Any] | None = None
