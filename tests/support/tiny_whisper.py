"""Random-weight Whisper models built offline, in each library's own format.

No PyPI package ships Whisper weights, so tests (and bench/whisper_rtf.py) build one: a
`transformers` folder (`save_pretrained`: config, safetensors, generation config, a
WhisperTokenizer over a vocabulary written here, the feature extractor), converted to
CTranslate2 (faster-whisper's format) with ctranslate2's own converter, and written as
whisper.cpp's ggml file by `write_ggml` below. The vocabulary has Whisper's multilingual
layout (51,865 ids: 50,257 text tokens, then <|endoftext|>, <|startoftranscript|>, 99
languages, the task tokens, <|notimestamps|> and 1,501 timestamps), because whisper.cpp
places its special tokens by those offsets. Text tokens are made-up letter words, so a
random model "says" deterministic gibberish.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

TEXT_TOKENS = 50257
N_LANGUAGES = 99  # whisper-tiny's (multilingual v1/v2); v3 adds Cantonese


@dataclass(frozen=True)
class Dims:
    """A Whisper model's sizes (whisper-tiny's by default)."""

    d_model: int = 384
    heads: int = 6
    encoder_layers: int = 4
    decoder_layers: int = 4
    ffn: int = 1536


TINY = Dims()  # the compute of openai/whisper-tiny
TEST = Dims(
    d_model=64, heads=2, encoder_layers=1, decoder_layers=1, ffn=256
)  # whisper.cpp wants ffn = 4 x width


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the ByteLevel alphabet)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _word(i: int) -> str:
    """The made-up text token number `i`: letters, every other one starting a word."""
    letters = ""
    n = i
    while True:
        letters = "abcdefghijklmnopqrstuvwxyz"[n % 26] + letters
        n //= 26
        if n == 0:
            break
    return ("Ġ" if i % 2 == 0 else "") + letters


def special_tokens() -> list[str]:
    """Whisper's special tokens in id order, from <|endoftext|> (50257) to <|30.00|>."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    langs = [f"<|{code}|>" for code in list(LANGUAGES)[:N_LANGUAGES]]
    head = ["<|endoftext|>", "<|startoftranscript|>", *langs]
    tasks = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>"]
    tail = ["<|nocaptions|>", "<|notimestamps|>"]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return head + tasks + tail + stamps


def text_vocab() -> dict[str, int]:
    """The 50,257 text tokens: the 256 byte characters, made-up words, and last the empty
    token, as Whisper's multilingual vocabulary has it (CTranslate2 4.8 reads a model as
    multilingual, able to detect languages and translate, when "" is in its vocabulary)."""
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    i = 0
    while len(vocab) < TEXT_TOKENS - 1:
        vocab.setdefault(_word(i), len(vocab))
        i += 1
    vocab[""] = TEXT_TOKENS - 1
    return vocab


def build_hf_whisper(folder: Path, dims: Dims = TEST, seed: int = 0) -> Path:
    """Write a random-weight Whisper as transformers' `save_pretrained` folder; return it.

    The <|endoftext|> embedding row is zeroed (the output projection is tied to it), so its
    logit is 0 while the best of 51,864 random ones is well above: the model decodes until
    a token cap, which makes decode lengths equal across libraries.
    """
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    specials = special_tokens()
    ids = {tok: TEXT_TOKENS + i for i, tok in enumerate(specials)}
    vocab_size = TEXT_TOKENS + len(specials)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=dims.d_model,
        encoder_layers=dims.encoder_layers,
        decoder_layers=dims.decoder_layers,
        encoder_attention_heads=dims.heads,
        decoder_attention_heads=dims.heads,
        encoder_ffn_dim=dims.ffn,
        decoder_ffn_dim=dims.ffn,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[220, ids["<|endoftext|>"]],
        suppress_tokens=[],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.model.decoder.embed_tokens.weight[ids["<|endoftext|>"]] = 0.0
    langs = {t: i for t, i in ids.items() if len(t) in (6, 7) and t[2:-2].isalpha()}
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        max_length=448,
        is_multilingual=True,
        lang_to_id=langs,
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[220, ids["<|endoftext|>"]],
        alignment_heads=[[dims.decoder_layers - 1, h] for h in range(dims.heads)],
        forced_decoder_ids=None,
        return_timestamps=False,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer = WhisperTokenizer(vocab=text_vocab(), merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    assert len(tokenizer) == vocab_size, len(tokenizer)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


def convert_ct2(hf_folder: Path, out: Path, quantization: str | None = None) -> Path:
    """Convert a `build_hf_whisper` folder to CTranslate2 (faster-whisper's format); return it."""
    from ctranslate2.converters import TransformersConverter

    files = ["tokenizer.json", "preprocessor_config.json"]
    conv = TransformersConverter(str(hf_folder), copy_files=files, low_cpu_mem_usage=True)
    conv.convert(str(out), quantization=quantization, force=True)
    return out


_GGML_NAMES = {
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query",
    "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value",
    "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_GGML_TOP = {
    "encoder.layer_norm": "encoder.ln_post",
    "decoder.layer_norm": "decoder.ln",
    "encoder.embed_positions": "encoder.positional_embedding",
    "decoder.embed_positions": "decoder.positional_embedding",
    "decoder.embed_tokens": "decoder.token_embedding",
}


def _ggml_name(hf_name: str) -> str:
    """transformers' parameter name -> whisper.cpp's (OpenAI's original naming)."""
    parts = hf_name.removeprefix("model.").split(".")
    if parts[1] == "layers":
        inner = ".".join(parts[3:-1])
        return ".".join([parts[0], "blocks", parts[2], _GGML_NAMES[inner], parts[-1]])
    stem, leaf = ".".join(parts[:-1]), parts[-1]
    if stem in _GGML_TOP:
        # positional embeddings are bare tensors in OpenAI's naming
        named = _GGML_TOP[stem]
        return named if named.endswith("positional_embedding") else f"{named}.{leaf}"
    return f"{stem}.{leaf}"


def write_ggml(hf_folder: Path, path: Path) -> Path:
    """Write whisper.cpp's ggml model file from a `build_hf_whisper` folder; return `path`.

    Layout (what whisper.cpp's loader reads): the magic 'ggml', eleven int32 hparams (vocab,
    audio ctx, audio width, audio heads, audio layers, text ctx, text width, text heads, text
    layers, mels, ftype), the mel filterbank (n_mels x 201 float32), the text tokens as
    length-prefixed bytes, then each tensor: n_dims, name length, type (0 f32, 1 f16), the
    dims innermost first, the name, the data. Matrices are f16 (whisper.cpp's usual file; an
    all-f32 file aborted in its im2col); vectors, conv biases (as [n, 1]) and positional
    embeddings stay f32.
    """
    import numpy as np
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(hf_folder, dtype=torch.float32)
    cfg = model.config
    filters = WhisperFeatureExtractor.from_pretrained(hf_folder).mel_filters.T  # (80, 201)
    decode = {ch: b for b, ch in _bytes_to_unicode().items()}
    vocab = sorted(text_vocab().items(), key=lambda kv: kv[1])
    with open(path, "wb") as out:
        hparams = [
            cfg.vocab_size,
            cfg.max_source_positions,
            cfg.d_model,
            cfg.encoder_attention_heads,
            cfg.encoder_layers,
            cfg.max_target_positions,
            cfg.d_model,
            cfg.decoder_attention_heads,
            cfg.decoder_layers,
            cfg.num_mel_bins,
            1,  # f16
        ]
        out.write(struct.pack("<12i", 0x67676D6C, *hparams))
        out.write(struct.pack("<2i", *filters.shape))
        out.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())
        out.write(struct.pack("<i", len(vocab)))
        for text, _ in vocab:
            raw = bytes(decode[c] for c in text)
            out.write(struct.pack("<i", len(raw)) + raw)
        for hf_name, tensor in model.state_dict().items():
            if hf_name == "proj_out.weight":  # tied to the token embedding
                continue
            name = _ggml_name(hf_name)
            data = tensor.detach().squeeze().numpy()
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(-1, 1)
            keep32 = data.ndim < 2 or name.endswith(("conv1.bias", "conv2.bias", "embedding"))
            half = not keep32
            data = data.astype("<f2" if half else "<f4")
            raw_name = name.encode()
            out.write(struct.pack("<3i", data.ndim, len(raw_name), int(half)))
            out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            out.write(raw_name)
            out.write(np.ascontiguousarray(data).tobytes())
    return path


def describe(folder: Path) -> dict:
    """The config of a built folder (for reports)."""
    return json.loads((folder / "config.json").read_text())


def build_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight faster-whisper (CTranslate2) model folder for tests; return it.

    64 wide, one layer each side, float32: about 14 MB, built in a few seconds."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hf = build_hf_whisper(Path(tmp) / "hf", TEST, seed)
        return convert_ct2(hf, folder)
