"""A GGUF model's image projector (`mmproj`) on llama.cpp's multimodal library, mtmd.

We own the mtmd context ourselves rather than through llama-cpp-python's `MTMDChatHandler`:
the handler renders chats with its own Jinja environment (prompts.py renders ours: folds,
tool_use templates, reasoning switches), fetches any non-data image URL itself (file:// and
http with no limits), clears the prompt cache on every request, and frees its context from
the Llama's exit stack. Here the context is made from the same C calls the handler makes
(`mtmd_init_from_file` on the loaded weights), and it is freed by `close()`.
"""

from __future__ import annotations

from typing import Any

from llama_cpp import Llama

_QUIET: Any = None  # the log callback, referenced for the life of the process


def _silence(mtmd: Any) -> None:
    """Stop mtmd logging every request (prompt text included) to stderr, whatever `verbose`.

    The callback object must outlive every call into mtmd: a temporary one crashed the
    process when mtmd next logged, so one is kept in a module global.
    """
    global _QUIET
    import llama_cpp

    if _QUIET is None:
        _QUIET = llama_cpp.llama_log_callback(lambda level, text, data: None)
    mtmd.mtmd_log_set(_QUIET, None)
    mtmd.mtmd_helper_log_set(_QUIET, None)


class Vision:
    """A loaded projector: reads images into `llm`'s context beside its prompt's tokens."""

    def __init__(self, llm: Llama, mmproj: str, gpu: bool) -> None:
        """Load `mmproj` on `llm`'s weights. Raises RuntimeError when llama-cpp-python has no
        mtmd, or the file is not a projector of images for this model."""
        try:
            import llama_cpp.mtmd_cpp as mtmd
        except (ImportError, OSError, FileNotFoundError) as exc:
            raise RuntimeError(
                f"mmproj needs llama-cpp-python built with mtmd (-DLLAVA_BUILD=ON): {exc}"
            ) from None
        _silence(mtmd)
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = gpu
        params.print_timings = False
        params.n_threads = llm.n_threads
        ctx = mtmd.mtmd_init_from_file(mmproj.encode(), llm.model, params)
        if not ctx:
            raise RuntimeError(
                f"{mmproj}: not a projector llama.cpp's mtmd can load for this model"
            )
        self._mtmd = mtmd
        self._ctx = ctx
        if not mtmd.mtmd_support_vision(ctx):
            self.close()
            raise RuntimeError(f"{mmproj}: this projector reads no images (audio only?)")
        self.path = mmproj
        self.marker = mtmd.mtmd_default_marker().decode()

    @property
    def ctx(self) -> Any:
        if self._ctx is None:
            raise RuntimeError("the projector is closed")
        return self._ctx

    def close(self) -> None:
        if self._ctx is not None:
            self._mtmd.mtmd_free(self._ctx)
            self._ctx = None
