"""Which files an `hf:` source means: the source syntax, GGUF choice by quant, split files,
and the folder files sentence-transformers and diffusers read. Pure: no hub, no network."""

from __future__ import annotations

import pytest
from localoip.runtimes.catalogue import runtime_for_files
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.hub_download import repository_runtime
from localoip.runtimes.sources.hub_files import choose_gguf, folder_files, gguf_models, gguf_quant
from localoip.runtimes.sources.hub_ref import HubRef, parse_hub_ref
from localoip.runtimes.sources.source import Source, parse_source

QUANTS = [
    "SmolLM2-135M-Instruct-Q4_K_M.gguf",
    "SmolLM2-135M-Instruct-Q8_0.gguf",
    "SmolLM2-135M-Instruct-f16.gguf",
    "SmolLM2-135M-Instruct-IQ4_XS.gguf",
    "mmproj-SmolLM2-F16.gguf",
    "README.md",
]


def ref(text: str) -> HubRef:
    return parse_hub_ref(text)


def test_hub_ref_forms():
    assert ref("o/r") == HubRef("o/r")
    assert ref("o/r:Q4_K_M") == HubRef("o/r", quant="Q4_K_M")
    assert ref("o/r@v2:Q8_0") == HubRef("o/r", revision="v2", quant="Q8_0")
    assert ref("o/r@abc123/sub/m.gguf") == HubRef("o/r", revision="abc123", path="sub/m.gguf")
    assert str(ref("o/r@v2:Q8_0")) == "hf:o/r@v2:Q8_0"


@pytest.mark.parametrize("bad", ["o", "o/", "/r", "o/r:", "o/r@", "o/r@v:", "o/r//f", "o r/x"])
def test_malformed_hub_refs_are_refused_with_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"hf:<owner>/<repo>\[@<revision>\]"):
        parse_hub_ref(bad)


def test_config_sources_accept_quants_and_revisions(tmp_path):
    assert parse_source("hf:o/r@v2:Q4_K_M", tmp_path) == Source("hf", "o/r@v2:Q4_K_M")
    with pytest.raises(ValueError, match="hf:<owner>/<repo>"):
        parse_source("hf:o", tmp_path)


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("model-IQ2_XXS.gguf", "IQ2_XXS"),
        ("model-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("model-bf16.gguf", "BF16"),
        ("Q4_K_M/model-Q4_K_M-00001-of-00003.gguf", "Q4_K_M"),
        ("model.gguf", None),
    ],
)
def test_quant_tag_is_read_from_the_file_name(name, quant):
    assert gguf_quant(name) == quant


def test_a_quant_tag_picks_its_file_whatever_its_case():
    assert choose_gguf(ref("o/r:q8_0"), QUANTS).files == ("SmolLM2-135M-Instruct-Q8_0.gguf",)
    assert choose_gguf(ref("o/r:F16"), QUANTS).first == "SmolLM2-135M-Instruct-f16.gguf"


def test_without_a_quant_q4_k_m_is_the_default():
    assert choose_gguf(ref("o/r"), QUANTS).first == "SmolLM2-135M-Instruct-Q4_K_M.gguf"


def test_without_a_quant_the_only_gguf_is_taken_whatever_its_quant():
    files = ["model-Q8_0.gguf", "mmproj-model-f16.gguf", "config.json"]
    assert choose_gguf(ref("o/r"), files).first == "model-Q8_0.gguf"


def test_without_a_quant_and_no_q4_k_m_the_error_lists_the_quants():
    with pytest.raises(SourceError, match=r"none is Q4_K_M.*one of: Q5_K_M, Q8_0$"):
        choose_gguf(ref("o/r"), ["m-Q8_0.gguf", "m-Q5_K_M.gguf"])


def test_an_unknown_quant_is_an_error_listing_the_quants_there_are():
    with pytest.raises(
        SourceError, match=r"no Q2_K GGUF; its quants are: F16, IQ4_XS, Q4_K_M, Q8_0"
    ):
        choose_gguf(ref("o/r:Q2_K"), QUANTS)


def test_a_projector_is_never_chosen_as_the_model():
    assert all("mmproj" not in m.first for m in gguf_models(QUANTS))


def test_a_repository_without_gguf_is_a_clear_error_for_llama_cpp():
    with pytest.raises(SourceError, match="has no GGUF file, and the llama-cpp runtime loads GGUF"):
        choose_gguf(ref("o/r"), ["config.json", "model.safetensors"])


def test_split_parts_are_grouped_in_order_and_load_from_the_first():
    files = [
        "Q4_K_M/big-Q4_K_M-00002-of-00003.gguf",
        "Q4_K_M/big-Q4_K_M-00001-of-00003.gguf",
        "Q4_K_M/big-Q4_K_M-00003-of-00003.gguf",
        "big-Q8_0.gguf",
    ]
    model = choose_gguf(ref("o/r:Q4_K_M"), files)
    assert model.files == tuple(sorted(files[:3]))
    assert model.first.endswith("-00001-of-00003.gguf")


def test_a_path_to_any_split_part_means_the_whole_split_model():
    files = ["big-Q4_K_M-00001-of-00002.gguf", "big-Q4_K_M-00002-of-00002.gguf"]
    assert choose_gguf(ref("o/r/big-Q4_K_M-00002-of-00002.gguf"), files).files == tuple(files)


def test_a_split_model_missing_a_part_is_refused():
    files = ["big-Q4_K_M-00001-of-00003.gguf", "big-Q4_K_M-00003-of-00003.gguf"]
    with pytest.raises(SourceError, match="incomplete in the repository: it has 2 of its 3"):
        choose_gguf(ref("o/r"), files)


def test_a_path_in_the_repository_still_names_one_file():
    assert choose_gguf(ref("o/r/sub/odd-name.gguf"), [*QUANTS, "sub/odd-name.gguf"]).files == (
        "sub/odd-name.gguf",
    )
    with pytest.raises(SourceError, match=r"no file 'absent\.gguf'"):
        choose_gguf(ref("o/r/absent.gguf"), QUANTS)


SENTENCE_TRANSFORMERS_REPO = [
    ".gitattributes",
    "1_Pooling/config.json",
    "README.md",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "onnx/model.onnx",
    "onnx/model_qint8_avx512.onnx",
    "openvino/openvino_model.bin",
    "openvino/openvino_model.xml",
    "pytorch_model.bin",
    "rust_model.ot",
    "sentence_bert_config.json",
    "tf_model.h5",
    "flax_model.msgpack",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
]


def test_sentence_transformers_gets_safetensors_and_no_other_weight_formats():
    kept = folder_files("sentence-transformers", SENTENCE_TRANSFORMERS_REPO)
    assert "model.safetensors" in kept and "1_Pooling/config.json" in kept
    for dropped in ("pytorch_model.bin", "onnx/model.onnx", "openvino/openvino_model.bin"):
        assert dropped not in kept
    assert not any(name.endswith((".h5", ".msgpack", ".ot", ".onnx")) for name in kept)


def test_pickled_weights_are_kept_when_they_are_the_only_weights():
    kept = folder_files("sentence-transformers", ["modules.json", "pytorch_model.bin"])
    assert kept == ["modules.json", "pytorch_model.bin"]


def test_diffusers_gets_its_components_without_root_checkpoints_or_variants():
    repo = [
        "model_index.json",
        "sd_turbo.safetensors",  # a single-file checkpoint diffusers' folders do not use
        "README.md",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/flax_model.msgpack",
        "vae/diffusion_pytorch_model.safetensors",
        "vae/diffusion_flax_model.msgpack",
        "tokenizer/vocab.json",
        "scheduler/scheduler_config.json",
    ]
    assert folder_files("diffusers", repo) == [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/model.safetensors",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]


def test_the_runtime_is_told_by_the_files_when_not_given():
    assert repository_runtime(ref("o/r"), QUANTS) == "llama-cpp"
    assert repository_runtime(ref("o/r"), ["model_index.json", "unet/x"]) == "diffusers"
    assert repository_runtime(ref("o/r"), SENTENCE_TRANSFORMERS_REPO) == "sentence-transformers"
    assert repository_runtime(ref("o/r"), ["Q4_K_M/model-Q4_K_M.gguf"]) == "llama-cpp"
    assert repository_runtime(ref("o/r"), ["config.json"]) is None


def test_a_quant_tag_or_a_named_gguf_means_llama_cpp_whatever_else_is_there():
    assert repository_runtime(ref("o/r:Q4_K_M"), ["config.json"]) == "llama-cpp"
    assert repository_runtime(ref("o/r/sub/odd.gguf"), ["modules.json"]) == "llama-cpp"
    assert repository_runtime(ref("o/r/README.md"), ["modules.json"]) == "sentence-transformers"


def test_a_folders_own_index_tells_more_than_a_gguf_beside_it_and_case_does_not_matter():
    assert runtime_for_files(["modules.json", "model.gguf"]) == "sentence-transformers"
    assert runtime_for_files(["model_index.json", "x.gguf"]) == "diffusers"
    assert runtime_for_files(["MODEL-Q8_0.GGUF"]) == "llama-cpp"
    assert runtime_for_files(["unet/model_index.json"]) is None  # marks are the folder's own


def test_the_projector_beside_a_gguf_is_chosen_f16_before_f32():
    from localoip.runtimes.sources.hub_files import choose_projector

    model = choose_gguf(ref("o/r"), QUANTS)
    files = [*QUANTS, "mmproj-SmolLM2-F32.gguf", "mmproj-SmolLM2-Q8_0.gguf"]
    assert choose_projector(files, model) == "mmproj-SmolLM2-F16.gguf"
    assert choose_projector(["m-Q4_K_M.gguf", "mmproj-m-f32.gguf"], model) == "mmproj-m-f32.gguf"
    assert choose_projector(["m-Q4_K_M.gguf", "sub/mmproj-m-f16.gguf"], model) is None  # not beside
    assert choose_projector(["m-Q4_K_M.gguf"], model) is None
