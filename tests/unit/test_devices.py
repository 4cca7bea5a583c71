"""GPU where there is one: "auto" choices, with the backend query faked (no GPU here)."""

from __future__ import annotations

import pytest
from localoip.runtimes.devices import (
    available_memory,
    first_slots,
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


MIB = 2**20
SMOLLM2, GEMMA3, LLAMA_8B = 92 * MIB, 242 * MIB, int(4.6 * GIB)  # Q4_1, Q4_K_M, Q4_K_M


@pytest.mark.parametrize("weights", [SMOLLM2, GEMMA3])
def test_auto_parallel_gives_the_demo_models_8_slots_on_2_threads_under_a_budget(weights):
    # 8 slots of SmolLM2's KV cache at 2048 tokens (46 MiB each) in 2 GiB available.
    slots, why = parallel_slots("auto", False, weights, 2, 46 * MIB, 2 * GIB)
    assert slots == 8
    assert why.startswith("auto: 8 on a CPU, a 0.") and why.endswith("GiB model on 2 threads")


def test_auto_parallel_follows_the_models_size_and_the_threads_on_a_cpu():
    assert [first_slots("auto", False, SMOLLM2, t) for t in (1, 2, 3, 4, 8)] == [4, 8, 8, 16, 16]
    assert [first_slots("auto", False, LLAMA_8B, t) for t in (1, 2, 4, 8, 16)] == [2, 4, 8, 16, 16]


def test_auto_parallel_is_8_slots_with_a_gpu_whatever_the_model():
    assert parallel_slots("auto", True, LLAMA_8B, 1, 10 * MIB, 8 * GIB) == (8, "auto: 8 on a GPU")


def test_auto_parallel_halves_until_the_kv_cache_fits_in_half_the_memory():
    # 1 GiB a slot, 3 GiB visible: 8 slots would take 8 GiB, 2 take 2 (> 1.5), 1 fits.
    slots, why = parallel_slots("auto", False, SMOLLM2, 1, GIB, 3 * GIB)
    assert slots == 1
    assert (
        why
        == "auto: 4 on a CPU, a 0.09 GiB model on 1 thread, 1 for the KV cache to fit in 3.0 GiB"
    )
    assert parallel_slots("auto", False, SMOLLM2, 2, GIB, 5 * GIB)[0] == 2


@pytest.mark.parametrize("slots", [1, 2, 16])
def test_a_number_of_slots_is_kept(slots):
    assert parallel_slots(slots, True, GIB, 2, GIB, 0) == (slots, "set in the model's options")
    assert first_slots(slots, False, GIB, 2) == slots


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
