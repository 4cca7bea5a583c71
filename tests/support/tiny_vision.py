"""A tiny vision pair built offline for tests: a llama GGUF whose template takes list content,
and a LLaVA-1.5-style `clip` projector GGUF that llama.cpp's mtmd loads."""

from __future__ import annotations

from pathlib import Path

from support.tiny_models import build_tiny_gguf

# ChatML whose content may be a string or a list of {"type": "text", "text": ...} parts, as
# mtmd's handlers and our renderer pass an image as a text part holding the media marker.
VISION_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

IMAGE_SIZE = 48
PATCH_SIZE = 8
# Every image, whatever its size or mode, is resized to IMAGE_SIZE: (48 / 8) ** 2 tokens.
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def build_tiny_projector(
    path: Path,
    n_embd_text: int = 64,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    patch_size: int = PATCH_SIZE,
    width: int = 32,
    n_block: int = 2,
) -> Path:
    """Write a tiny `clip` projector GGUF to `path`; return it.

    LLaVA-1.5's `mlp` projector over a CLIP-style ViT: 48 px images in 8 px patches (36
    image tokens), width 32, 2 blocks (LLaVA's graph runs all but the last), pre and post
    layer norms, then `mm.0` (32 -> 64), GELU, `mm.2` (64 -> `n_embd_text`). All tensors are
    F32 and random from `seed`, so its embeddings are noise, but deterministic. The sizes can
    be raised (bench/image_turns.py: an encoder that costs what a real one does).
    """
    import gguf
    import numpy as np

    n_ff, n_head = 2 * width, 2
    n_pos = (image_size // patch_size) ** 2
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("tiny-random-projector")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.image_size", image_size)
    w.add_uint32("clip.vision.patch_size", patch_size)
    w.add_uint32("clip.vision.embedding_length", width)
    w.add_uint32("clip.vision.feed_forward_length", n_ff)
    w.add_uint32("clip.vision.projection_dim", n_embd_text)
    w.add_uint32("clip.vision.block_count", n_block)
    w.add_uint32("clip.vision.attention.head_count", n_head)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def tensor(name: str, *shape: int, std: float = 0.2) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * std).astype(np.float32))

    def norm(name: str, size: int) -> None:
        w.add_tensor(f"{name}.weight", np.ones(size, dtype=np.float32))
        w.add_tensor(f"{name}.bias", np.zeros(size, dtype=np.float32))

    # numpy shapes are ggml's reversed: the patch kernel is (out, in_channels, kh, kw).
    tensor("v.patch_embd.weight", width, 3, patch_size, patch_size)
    tensor("v.position_embd.weight", n_pos, width)
    norm("v.pre_ln", width)
    for i in range(n_block):
        for proj in ("q", "k", "v", "out"):
            tensor(f"v.blk.{i}.attn_{proj}.weight", width, width)
            tensor(f"v.blk.{i}.attn_{proj}.bias", width, std=0.02)
        norm(f"v.blk.{i}.ln1", width)
        norm(f"v.blk.{i}.ln2", width)
        tensor(f"v.blk.{i}.ffn_up.weight", n_ff, width)
        tensor(f"v.blk.{i}.ffn_up.bias", n_ff, std=0.02)
        tensor(f"v.blk.{i}.ffn_down.weight", width, n_ff)
        tensor(f"v.blk.{i}.ffn_down.bias", width, std=0.02)
    norm("v.post_ln", width)
    tensor("mm.0.weight", 64, width)
    tensor("mm.0.bias", 64, std=0.02)
    tensor("mm.2.weight", n_embd_text, 64, std=1.0)
    tensor("mm.2.bias", n_embd_text, std=0.02)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def build_tiny_vision_pair(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny text GGUF (list-content ChatML) and its projector into `directory`;
    return (model, mmproj)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = build_tiny_gguf(
        directory / "tiny-vision.gguf", "tiny-vision", template=VISION_TEMPLATE, attn_std=0.3
    )
    mmproj = build_tiny_projector(directory / "mmproj-tiny-vision-f32.gguf", seed=seed)
    return model, mmproj


def mtmd_available() -> bool:
    """Whether the installed llama-cpp-python was built with libmtmd (-DLLAVA_BUILD=ON)."""
    try:
        import llama_cpp.mtmd_cpp  # noqa: F401  (loads libmtmd, or raises)
    except (ImportError, OSError, FileNotFoundError):
        return False
    return True


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (20, 20)) -> bytes:
    """A solid-colour PNG file's bytes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def noise_png(size: tuple[int, int], seed: int = 0) -> bytes:
    """A PNG of random pixels: about 3 bytes a pixel, since noise does not compress."""
    import io
    import random

    from PIL import Image

    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "PNG")
    return out.getvalue()


def png_data_url(color: tuple[int, int, int], size: tuple[int, int] = (20, 20)) -> str:
    """A solid-colour PNG as a data: URL, as chat clients send an attached image."""
    import base64

    return "data:image/png;base64," + base64.b64encode(png_bytes(color, size)).decode()
