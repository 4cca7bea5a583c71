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


CPU_SLOTS = 4  # llama-server's default; on 2 cores, 4 streams gave 1.45x, 8 gave 2.3x
GPU_SLOTS = 8
KV_SHARE = 0.5
"""The part of the visible memory the slots' KV cache may take when `parallel` is "auto"."""


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


def first_slots(setting: int | str, gpu: bool) -> int:
    """The slots a `parallel` option starts from: a number as it is; "auto" 4 on a CPU and 8
    with a GPU backend (parallel_slots may then halve them)."""
    if setting != AUTO:
        return int(setting)
    return GPU_SLOTS if gpu else CPU_SLOTS


def parallel_slots(
    setting: int | str, gpu: bool, kv_bytes_per_slot: int, available: int
) -> tuple[int, str]:
    """Generation slots for a `parallel` option, and why: a number as it is; "auto" 4 on a
    CPU and 8 with a GPU backend, halved while the slots' KV cache (each `kv_bytes_per_slot`)
    would take more than half of `available` bytes; at least 1 (no batching)."""
    if setting != AUTO:
        return int(setting), "set in the model's options"
    slots = first_slots(setting, gpu)
    why = f"auto: {slots} on {'a GPU' if gpu else 'a CPU'}"
    while slots > 1 and slots * kv_bytes_per_slot > KV_SHARE * available:
        slots //= 2
    if slots < (GPU_SLOTS if gpu else CPU_SLOTS):
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
