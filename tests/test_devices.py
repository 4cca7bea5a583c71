"""GPU where there is one: "auto" choices, with the backend query faked (no GPU here)."""

from __future__ import annotations

import pytest
from localoip.runtimes.devices import gpu_layers, llama_gpu_offload, torch_device
from localoip.runtimes.options import (
    DiffusersOptions,
    LlamaCppOptions,
    SentenceTransformersOptions,
)


def test_auto_offloads_every_layer_when_llama_cpp_has_a_gpu_backend():
    assert gpu_layers("auto", gpu_offload=lambda: True) == -1


def test_auto_offloads_nothing_on_a_cpu_only_build():
    assert gpu_layers("auto", gpu_offload=lambda: False) == 0


@pytest.mark.parametrize("layers", [0, 12, -1])
def test_a_number_of_layers_is_kept_without_asking_the_backend(layers):
    def never() -> bool:
        raise AssertionError("the backend must not be asked")

    assert gpu_layers(layers, gpu_offload=never) == layers


def test_this_machines_llama_cpp_build_has_no_gpu_so_auto_means_cpu():
    assert llama_gpu_offload() is False
    assert gpu_layers("auto") == 0


@pytest.mark.parametrize(
    ("present", "device"),
    [({"cuda", "mps"}, "cuda"), ({"mps"}, "mps"), (set(), "cpu")],
)
def test_auto_device_tries_cuda_then_mps_then_cpu(present, device):
    assert torch_device("auto", available=present.__contains__) == device


def test_a_named_device_is_kept():
    assert torch_device("cuda:1", available=lambda _: False) == "cuda:1"


def test_this_machine_has_no_accelerator_so_auto_means_cpu():
    assert torch_device("auto") == "cpu"


def test_auto_is_the_default_for_every_local_runtime():
    assert LlamaCppOptions().n_gpu_layers == "auto"
    assert SentenceTransformersOptions().device == "auto"
    assert DiffusersOptions().device == "auto"
