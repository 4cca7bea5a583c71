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
import hashlib
import threading
from typing import Any

from llama_cpp import Llama
from localoip.runtimes.capabilities import IMAGE_MARKER, InputError
from localoip.runtimes.llamacpp.slots import Span

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
        # Gemma 3's images attend both ways: each must be decoded in one micro-batch, which
        # the engine's shared steps (`parallel_batch`) may be too small for
        self.non_causal = bool(mtmd.mtmd_decode_use_non_causal(ctx, None))
        # mtmd's context is not safe for two threads: the serial path and the batching
        # engine's thread may both read images
        self.lock = threading.Lock()
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


def image_key(ident: bytes) -> int:
    """An image's key in a prompt's keys (slots.py): negative, so it is never a token id, and
    64 bits of the image's hash."""
    return -1 - int(ident[:15], 16)


class MediaPrompt:
    """A prompt's text and images, tokenized by mtmd into chunks; `tokens` has one entry per
    position (an image's positions hold `placeholder`), as the context will hold them; `keys`
    the same with each image's positions holding its key, a hash of its pixels (for the prefix
    cache, slots.py); `spans` where each image lies."""

    def __init__(self, vision: Vision, text: str, images: list[tuple[int, int, bytes]]) -> None:
        mtmd = vision._mtmd
        self._mtmd = mtmd
        self._vision = vision
        bitmaps = []
        self.chunks = mtmd.mtmd_input_chunks_init()
        try:
            for width, height, pixels in images:
                buffer = (ctypes.c_uint8 * len(pixels)).from_buffer_copy(pixels)
                bitmap = mtmd.mtmd_bitmap_init(width, height, buffer)
                bitmaps.append(bitmap)
                # the image's identity, as llama-server keys its cache: mtmd gives each of the
                # image's chunks this id
                mtmd.mtmd_bitmap_set_id(bitmap, _pixels_id(width, height, pixels))
            text_in = mtmd.mtmd_input_text()
            encoded = text.encode()
            text_in.text, text_in.text_len = encoded, len(encoded)
            text_in.add_special, text_in.parse_special = True, True
            array = (mtmd.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            with vision.lock:
                done = mtmd.mtmd_tokenize(
                    vision.ctx, self.chunks, ctypes.byref(text_in), array, len(bitmaps)
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
        self.keys: list[int] = []
        self.spans: list[Span] = []
        for i in range(mtmd.mtmd_input_chunks_size(self.chunks)):
            chunk = mtmd.mtmd_input_chunks_get(self.chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                text_tokens = [ptr[j] for j in range(count.value)]
                self.tokens += text_tokens
                self.keys += text_tokens
                continue
            n_pos = mtmd.mtmd_input_chunk_get_n_pos(chunk)
            start = len(self.tokens)
            self.spans.append(Span(start, start + n_pos, i))
            self.tokens += [PLACEHOLDER] * n_pos
            self.keys += [image_key(mtmd.mtmd_input_chunk_get_id(chunk))] * n_pos
        if self.spans and self.spans[-1].end == len(self.tokens):
            self.close()  # its first token would be sampled from an image's last position
            raise InputError("the prompt must not end with an image", "messages")

    def read_image(self, ctx: Any, span: Span, seq: int, n_batch: int) -> None:
        """Encode the image at `span` and decode it into llama context `ctx` (a pointer) for
        sequence `seq` from position `span.start`, in batches of `n_batch`; the cells after
        it must be free. RuntimeError when mtmd fails or places it elsewhere."""
        import llama_cpp

        mtmd = self._mtmd
        chunk = mtmd.mtmd_input_chunks_get(self.chunks, span.chunk)
        n_past = llama_cpp.llama_pos(0)
        with self._vision.lock:  # one projector context, on whichever path's thread
            done = mtmd.mtmd_helper_eval_chunk_single(
                self._vision.ctx,
                ctx,
                chunk,
                llama_cpp.llama_pos(span.start),
                llama_cpp.llama_seq_id(seq),
                n_batch,
                False,
                ctypes.byref(n_past),
            )
        if done != 0:
            raise RuntimeError(f"mtmd could not read an image (error {done})")
        if n_past.value != span.end:
            raise RuntimeError(f"mtmd read an image to position {n_past.value}, not {span.end}")

    def close(self) -> None:
        if self.chunks is not None:
            self._mtmd.mtmd_input_chunks_free(self.chunks)
            self.chunks = None


def prompt_keys(prompt: list[int], media: MediaPrompt | None) -> tuple[list[int], list[Span]]:
    """A prompt's keys for the prefix cache and where its images lie: its tokens and none
    for a text prompt."""
    return (media.keys, media.spans) if media is not None else (prompt, [])


def _pixels_id(width: int, height: int, pixels: bytes) -> bytes:
    """A hex digest of an image's decoded pixels and size: equal for equal pictures, whatever
    file format carried them."""
    digest = hashlib.sha256(f"{width}x{height}:".encode())
    digest.update(pixels)
    return digest.hexdigest().encode()


# What an image's positions hold in the token list: a real id (samplers may index logits by
# the prompt's tokens); the prefix cache compares `keys`, where they hold the image's key.
PLACEHOLDER = 0
