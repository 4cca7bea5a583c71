"""Where a model runs when its options say "auto": on a GPU when the library has one, else
the CPU. Each choice is a small function whose backend query is a parameter, so the choice
is tested with the query faked (this machine has no GPU)."""

from __future__ import annotations

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
