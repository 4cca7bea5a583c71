"""Tiny random-weight models (a llama GGUF, a Stable Diffusion pipeline, a cross-encoder) built
offline for tests."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from support.gguf_parts import Shape, Vocab, gpt2_bytes, write_llama_gguf

# ChatML, deliberately not byte-identical to llama-cpp-python's built-in "chatml" template so
# that llama-cpp-python uses this GGUF template ("chat_template.default") rather than its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_gguf(
    path: Path,
    name: str = "tiny-random-llama",
    split_max_tensors: int = 0,
    template: str = CHATML_TEMPLATE,
    n_embd: int = 64,
    n_ff: int = 128,
    n_layer: int = 2,
    file_type: str = "ALL_F32",
    long_runs: tuple[str, ...] = (),
    add_bos: bool = False,
    attn_std: float = 0.02,
) -> Path:
    """Write a tiny F32 llama-architecture GGUF with a chat template (ChatML unless given)
    to `path`; return it.

    `name` goes into its metadata, so two tiny GGUFs of different names differ in bytes.
    `file_type` (a `gguf.LlamaFileType` name such as "MOSTLY_Q8_0") is only the label its
    metadata gives: the tensors are F32 whatever it says.
    With `split_max_tensors`, it is written as a split GGUF of that many tensors a part,
    named `<stem>-00001-of-0000N.gguf` beside `path`, which is not written.

    2 layers, n_embd 64, 4 heads, n_ff 128 unless given, a byte-level GPT-2 BPE vocab
    (264 tokens) and mean pooling for embeddings. Bigger sizes make a model that decodes
    slowly enough for a person (or a browser test) to stop it mid-reply.

    Only printable-ASCII tokens have non-zero output weights, so generated text is readable
    ASCII and never contains control tokens (chat never stops on `<|im_end|>`; generation
    always runs to max_tokens unless a stop string matches).

    `long_runs` adds long tokens, such as "=" * 64: each a run of one printable ASCII
    character whose length is a power of two, built by merges that double it (so the run's
    text tokenizes to that one token). They come after the specials, with zero output
    weights: a model generates one only when a logit_bias asks for it.

    `add_bos` makes prompts start with a BOS token (`<|endoftext|>`), as Llama's and Gemma's
    GGUFs ask; by default none is added, as in Qwen's.

    `attn_std` scales the random attention weights: at the default the reply hangs almost
    only on the last prompt token; about 0.3 makes earlier ones (an image's) change it.
    """
    import gguf
    import numpy as np

    byte_table = gpt2_bytes()
    merges = ["Ġ t", "h e", "l l", "i n", "e r"]
    run_merges = []
    for run in long_runs:
        assert len(set(run)) == 1 and 32 < ord(run[0]) < 127, run
        assert len(run) >= 2 and len(run) & (len(run) - 1) == 0, run
        run_merges += [
            f"{run[:n]} {run[:n]}" for n in (2**i for i in range(len(run).bit_length() - 1))
        ]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = [c for _, c in byte_table] + [m.replace(" ", "") for m in merges] + specials
    tokens += [m.replace(" ", "") for m in run_merges]
    n_vocab = len(tokens)
    normal, control = gguf.TokenType.NORMAL, gguf.TokenType.CONTROL
    n_plain = len(byte_table) + len(merges)
    vocab = Vocab(
        tokens,
        [normal] * n_plain + [control] * len(specials) + [normal] * len(run_merges),
        merges + run_merges,
        bos=tokens.index("<|endoftext|>"),
        eos=tokens.index("<|im_end|>"),
        add_bos=add_bos,
    )
    shape = Shape(n_embd=n_embd, n_ff=n_ff, n_layer=n_layer)

    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {}

    def tensor(name: str, *shape: int, std: float = 0.02) -> None:
        tensors[name] = (rng.standard_normal(shape) * std).astype(np.float32)

    def norm(name: str) -> None:
        tensors[name] = np.ones(n_embd, dtype=np.float32)

    tensor("token_embd.weight", n_vocab, n_embd, std=1.0)
    norm("output_norm.weight")
    printable = [32 <= b < 127 for b, _ in byte_table] + [True] * len(merges)
    printable += [False] * (len(specials) + len(run_merges))
    mask = np.array(printable, dtype=np.float32)[:, None]
    tensors["output.weight"] = rng.standard_normal((n_vocab, n_embd)).astype(np.float32) * mask
    for i in range(n_layer):
        norm(f"blk.{i}.attn_norm.weight")
        norm(f"blk.{i}.ffn_norm.weight")
        for proj in ("q", "k", "v", "output"):
            tensor(f"blk.{i}.attn_{proj}.weight", n_embd, n_embd, std=attn_std)
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    return write_llama_gguf(
        path,
        name=name,
        vocab=vocab,
        shape=shape,
        template=template,
        tensors=tensors,
        file_type=file_type,
        split_max_tensors=split_max_tensors,
        pooling_mean=True,
    )


def build_tiny_sd(directory: Path, seed: int = 0) -> Path:
    """Write a tiny Stable-Diffusion-shaped diffusers pipeline into `directory`; return it.
    Its random weights are drawn from `seed`, so another seed makes another model.

    The VAE has 2 blocks (scale factor 2) and the UNet sample_size is 32, so the default output
    is 64x64; the pipeline accepts any height/width that is a multiple of 8 (minimum 8x8).
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    chars = [c for _, c in gpt2_bytes()]
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer.from_pretrained(tmp, model_max_length=77)

    torch.manual_seed(seed)
    text_config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    unet = UNet2DConditionModel(
        sample_size=32,
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        latent_channels=4,
        sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


def _tiny_bert(directory: Path, num_labels: int | None) -> None:
    """Save a tiny random BERT and its tokenizer into `directory`: a classifier with
    `num_labels` outputs, or the bare encoder when None.

    2 layers, hidden 32, a WordPiece vocabulary of lowercase letters, digits and a little
    punctuation (every word splits into characters), and 128 positions.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = [*specials, *chars, *".,?!'-", *(f"##{c}" for c in chars)]
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("\n".join(tokens) + "\n")
        tokenizer = BertTokenizerFast(str(vocab), do_lower_case=True, model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        num_labels=num_labels or 1,
        initializer_range=0.2,  # wide enough that documents' scores differ visibly
    )
    model = BertModel(config) if num_labels is None else BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def build_tiny_cross_encoder(directory: Path) -> Path:
    """Write a tiny random-weight BERT cross-encoder (one label) into `directory`; return it.

    sentence-transformers' `CrossEncoder(directory)` loads it; its scores are sigmoids,
    random but deterministic.
    """
    _tiny_bert(directory, num_labels=1)
    return directory


def build_tiny_sentence_transformer(directory: Path) -> Path:
    """Write a tiny sentence-transformers folder into `directory`; return it.

    The tiny BERT, mean pooling and normalisation, saved by sentence-transformers itself
    (modules.json, 1_Pooling/, 2_Normalize/), so `SentenceTransformer(directory)` loads it
    and gives 32-dimensional unit vectors.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    with tempfile.TemporaryDirectory() as tmp:
        _tiny_bert(Path(tmp), num_labels=None)
        encoder = Transformer(tmp, max_seq_length=128)
        pooling = Pooling(encoder.get_embedding_dimension(), "mean")
        SentenceTransformer(modules=[encoder, pooling, Normalize()], device="cpu").save(
            str(directory)
        )
    return directory
