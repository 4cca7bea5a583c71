"""GPU where there is one: "auto" choices, with the backend query faked (no GPU here)."""

from __future__ import annotations

import pytest
from localoip.runtimes.devices import (
    available_memory,
    gpu_layers,
    llama_gpu_offload,
    parallel_slots,
    torch_device,
)
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


GIB = 2**30


def test_auto_parallel_is_4_slots_on_a_cpu_and_8_with_a_gpu():
    assert parallel_slots("auto", False, 10 * 2**20, 8 * GIB) == (4, "auto: 4 on a CPU")
    assert parallel_slots("auto", True, 10 * 2**20, 8 * GIB) == (8, "auto: 8 on a GPU")


def test_auto_parallel_halves_until_the_kv_cache_fits_in_half_the_memory():
    # 1 GiB a slot, 3 GiB visible: 4 slots would take 4 GiB, 2 take 2 (> 1.5), 1 fits.
    slots, why = parallel_slots("auto", False, GIB, 3 * GIB)
    assert slots == 1 and why == "auto: 4 on a CPU, 1 for the KV cache to fit in 3.0 GiB"
    assert parallel_slots("auto", False, GIB, 5 * GIB)[0] == 2


@pytest.mark.parametrize("slots", [1, 2, 16])
def test_a_number_of_slots_is_kept(slots):
    assert parallel_slots(slots, True, GIB, 0) == (slots, "set in the model's options")


def test_visible_memory_is_read():
    assert available_memory() > 0


def test_the_default_queue_is_sized_by_what_a_request_costs():
    assert LlamaCppOptions().queue_limit == 64  # a generation costs seconds
    assert LlamaCppOptions(embedding=True).queue_limit == 1024  # a sentence, milliseconds
    assert SentenceTransformersOptions().queue_limit == 1024
    assert SentenceTransformersOptions(kind="cross-encoder").queue_limit == 1024
    assert DiffusersOptions().queue_limit == 64
    assert LlamaCppOptions(max_queue=3).queue_limit == 3
    assert LlamaCppOptions().parallel == "auto"
