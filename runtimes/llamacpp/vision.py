"""A GGUF model's image projector (`mmproj`) on llama.cpp's multimodal library, mtmd.

We own the mtmd context ourselves rather than through llama-cpp-python's `MTMDChatHandler`:
the handler renders chats with its own Jinja environment (prompts.py renders ours: folds,
tool_use templates, reasoning switches), fetches any non-data image URL itself (file:// and
http with no limits), clears the prompt cache on every request, and frees its context from
the Llama's exit stack. Here the context is made from the same C calls the handler makes
(`mtmd_init_from_file` on the loaded weights), and it is freed by `close()`.
"""

from __future__ import annotations

import ctypes
from typing import Any

from llama_cpp import Llama
from localoip.runtimes.capabilities import IMAGE_MARKER, InputError

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


class MediaPrompt:
    """A prompt's text and images, tokenized by mtmd into chunks; `tokens` has one entry per
    position (an image's positions hold `placeholder`), as the context will hold them."""

    def __init__(self, vision: Vision, text: str, images: list[tuple[int, int, bytes]]) -> None:
        mtmd = vision._mtmd
        self._mtmd = mtmd
        self._ctx = vision.ctx
        bitmaps = []
        self.chunks = mtmd.mtmd_input_chunks_init()
        try:
            for width, height, pixels in images:
                buffer = (ctypes.c_uint8 * len(pixels)).from_buffer_copy(pixels)
                bitmaps.append(mtmd.mtmd_bitmap_init(width, height, buffer))
            text_in = mtmd.mtmd_input_text()
            encoded = text.encode()
            text_in.text, text_in.text_len = encoded, len(encoded)
            text_in.add_special, text_in.parse_special = True, True
            array = (mtmd.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            done = mtmd.mtmd_tokenize(
                self._ctx, self.chunks, ctypes.byref(text_in), array, len(bitmaps)
            )
        finally:
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)
        if done != 0:
            self.close()
            raise InputError(
                f"the images do not match the prompt's {IMAGE_MARKER} markers (mtmd error {done})",
                "messages",
            )
        self.tokens: list[int] = []
        for i in range(mtmd.mtmd_input_chunks_size(self.chunks)):
            chunk = mtmd.mtmd_input_chunks_get(self.chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                self.tokens += [ptr[j] for j in range(count.value)]
            else:
                self.tokens += [PLACEHOLDER] * mtmd.mtmd_input_chunk_get_n_pos(chunk)

    def read(self, llm: Llama) -> None:
        """Read the whole prompt into `llm`'s context from position 0 (nothing cached kept:
        two prompts of one text and other images must never share cells)."""
        import llama_cpp

        mtmd = self._mtmd
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        for i in range(mtmd.mtmd_input_chunks_size(self.chunks)):
            chunk = mtmd.mtmd_input_chunks_get(self.chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                llm.eval([ptr[j] for j in range(count.value)])
                continue
            start = llm.n_tokens
            n_past = llama_cpp.llama_pos(0)
            done = mtmd.mtmd_helper_eval_chunk_single(
                self._ctx,
                llm._ctx.ctx,
                chunk,
                llama_cpp.llama_pos(start),
                llama_cpp.llama_seq_id(0),
                llm.n_batch,
                False,
                ctypes.byref(n_past),
            )
            if done != 0:
                raise RuntimeError(f"mtmd could not read an image (error {done})")
            llm.input_ids[start : n_past.value] = PLACEHOLDER
            llm.n_tokens = n_past.value

    def close(self) -> None:
        if self.chunks is not None:
            self._mtmd.mtmd_input_chunks_free(self.chunks)
            self.chunks = None


# What an image's positions hold in the token list: a real id (samplers may index logits by
# the prompt's tokens), never matched as a cached prefix since an image prompt is read whole.
PLACEHOLDER = 0
