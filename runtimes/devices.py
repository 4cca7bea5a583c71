"""Where a model runs when its options say "auto": on a GPU when the library has one, else
the CPU. Each choice is a small function whose backend query is a parameter, so the choice
is tested with the query faked (this machine has no GPU)."""

from __future__ import annotations

import os
from collections.abc import Callable

AUTO = "auto"
ALL_LAYERS = -1  # llama.cpp's "offload every layer"
TORCH_DEVICES = ("cuda", "mps")
"""The accelerators "auto" tries, in order, before the CPU."""


def llama_gpu_offload() -> bool:
    """Whether this llama-cpp-python was built with a GPU backend (CUDA, Metal, Vulkan...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def gpu_layers(setting: int | str, gpu_offload: Callable[[], bool] = llama_gpu_offload) -> int:
    """llama.cpp's `n_gpu_layers` for an `n_gpu_layers` option: a number as it is; "auto"
    every layer when llama.cpp can offload to a GPU, else none."""
    if setting != AUTO:
        return int(setting)
    return ALL_LAYERS if gpu_offload() else 0


def torch_has(device: str) -> bool:
    """Whether torch can use this accelerator here ("cuda" or "mps")."""
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    return device == "mps" and torch.backends.mps.is_available()


def torch_device(setting: str, available: Callable[[str], bool] = torch_has) -> str:
    """The torch device for a `device` option: a name as it is; "auto" cuda, then mps,
    then cpu."""
    if setting != AUTO:
        return setting
    return next((device for device in TORCH_DEVICES if available(device)), "cpu")


GPU_SLOTS = 8
MAX_AUTO_SLOTS = 16
SMALL_MODEL = 2**30
"""Bytes of weights up to which a CPU decode step's fixed cost (the graph, the threads'
hand-offs, the output layer over the vocabulary) outweighs what each extra sequence adds, so
"auto" gives a CPU 4 slots a thread instead of 2 (docs/benchmarks.md: on 2 threads a step of
a 270M model cost 14 ms at 1 sequence, 47 ms at 8 and 79 ms at 16)."""
KV_SHARE = 0.5
"""The part of the visible memory the slots' KV cache may take when `parallel` is "auto"."""


def decode_threads(threads: int | None) -> int:
    """The threads a llama.cpp model decodes with: its `threads` option, else llama-cpp-
    python's default, half the cores."""
    return threads or max((os.cpu_count() or 1) // 2, 1)


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux's MemAvailable; elsewhere the
    free pages)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def first_slots(setting: int | str, gpu: bool, weights: int, threads: int) -> int:
    """The slots a `parallel` option starts from: a number as it is; "auto" 8 with a GPU
    backend; on a CPU 4 a decoding thread for a model of at most SMALL_MODEL bytes of
    `weights` and 2 a thread for a larger one, rounded down to a power of two, from 2 to 16
    (parallel_slots may then halve them): 8 for the demo models on 2 threads."""
    if setting != AUTO:
        return int(setting)
    if gpu:
        return GPU_SLOTS
    wanted = (4 if weights <= SMALL_MODEL else 2) * max(threads, 1)
    return min(MAX_AUTO_SLOTS, max(2, 1 << (wanted.bit_length() - 1)))


def parallel_slots(
    setting: int | str,
    gpu: bool,
    weights: int,
    threads: int,
    kv_bytes_per_slot: int,
    available: int,
) -> tuple[int, str]:
    """Generation slots for a `parallel` option, and why: a number as it is; "auto" as
    first_slots chooses from the model's `weights` (bytes) and decoding `threads`, halved
    while the slots' KV cache (each `kv_bytes_per_slot`) would take more than half of
    `available` bytes; at least 1 (no batching)."""
    if setting != AUTO:
        return int(setting), "set in the model's options"
    first = slots = first_slots(setting, gpu, weights, threads)
    if gpu:
        why = f"auto: {slots} on a GPU"
    else:
        plural = "s" if threads != 1 else ""
        why = (
            f"auto: {slots} on a CPU, a {weights / 2**30:.2f} GiB model on {threads} thread{plural}"
        )
    while slots > 1 and slots * kv_bytes_per_slot > KV_SHARE * available:
        slots //= 2
    if slots < first:
        why += f", {slots} for the KV cache to fit in {available / 2**30:.1f} GiB"
    return slots, why


AUTO_CONTEXT_FLOOR = 2048  # "auto" cuts a context no lower than the default n_ctx
CONTEXT_STEP = 256  # a cut context is a multiple of this many tokens


def context_tokens(
    setting: int | str, trained: int | None, bytes_per_token: int, sequences: int, available: int
) -> tuple[int, str]:
    """llama.cpp's n_ctx for an `n_ctx` option, and why: a number as it is; "auto" the
    model's `trained` context, cut (to a multiple of 256) while `sequences` of it, each token
    `bytes_per_token` of KV cache, would take more than half of `available` bytes, as
    `parallel` "auto" sizes its slots; never below 2048 (the slots are halved instead) nor
    above the trained context. A model that names no trained context gets 2048."""
    if setting != AUTO:
        return int(setting), "set in the model's options"
    if not trained:
        return (
            AUTO_CONTEXT_FLOOR,
            f"auto: {AUTO_CONTEXT_FLOOR}, as the model names no trained context",
        )
    budget = KV_SHARE * available
    them = f"{sequences} sequence{'s' if sequences != 1 else ''}"
    fits = int(budget // max(sequences * bytes_per_token, 1))
    if trained <= fits:
        need = sequences * trained * bytes_per_token
        return trained, (
            f"auto: the trained context, whose KV cache for {them} ({need / 2**30:.2f} GiB) "
            f"fits in {budget / 2**30:.1f} GiB"
        )
    chosen = min(trained, max(fits - fits % CONTEXT_STEP, AUTO_CONTEXT_FLOOR))
    return chosen, (
        f"auto: {chosen} of the trained {trained}, for the KV cache of {them} to fit in "
        f"{budget / 2**30:.1f} GiB"
    )
