"""README names every option: the `[server]` settings in its models.toml example, and each
runtime's options in its tables, so none is undocumented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from localoip.app.core.config import ServerSettings
from localoip.runtimes.options import (
    DiffusersOptions,
    LlamaCppOptions,
    ModelOptions,
    OipOptions,
    OpenAIOptions,
    SentenceTransformersOptions,
)

README = (Path(__file__).parents[2] / "README.md").read_text()
SECTION = README[README.index("The options each runtime takes") : README.index("How models run")]


def rows(first: str) -> str:
    """The text of the options table's row(s) that start with `first`."""
    return "\n".join(line for line in SECTION.splitlines() if line.startswith(first))


@pytest.mark.parametrize(
    ("options", "where"),
    [
        (ModelOptions, "| every runtime |"),
        (SentenceTransformersOptions, "| `sentence-transformers` |"),
        (DiffusersOptions, "| `diffusers` |"),
        (OpenAIOptions, "| `openai` |"),
        (OipOptions, "| `oip` |"),
    ],
)
def test_each_runtimes_row_names_its_options(options, where):
    shared = set(ModelOptions.__struct_fields__) if options is not ModelOptions else set()
    text = rows(where)
    names = dict(zip(options.__struct_fields__, options.__struct_encode_fields__, strict=True))
    missing = [
        toml for name, toml in names.items() if name not in shared and f"`{toml}`" not in text
    ]
    assert missing == []


def test_the_llama_cpp_table_has_a_row_for_each_option_and_no_other():
    table = SECTION[SECTION.index("### llama-cpp options") :]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    own = set(LlamaCppOptions.__struct_fields__) - set(ModelOptions.__struct_fields__)
    assert documented == own


def test_the_models_toml_example_sets_every_server_setting():
    start = README.index("```toml\n[server]")
    example = README[start : README.index("[[models]]", start)]
    written = set(re.findall(r"^([a-z_]+) = ", example, flags=re.MULTILINE))
    assert written == set(ServerSettings.__struct_fields__)
