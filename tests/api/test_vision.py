"""Vision through llama.cpp's mtmd, in process: a model with an `mmproj` says so, and reads
images in chat; one without refuses them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.configs import model_toml
from support.inprocess import InProcessApp
from support.tiny_vision import build_tiny_vision_pair, mtmd_available

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")


@pytest.fixture(scope="module")
def vision_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))


@pytest.fixture(scope="module")
def vision_app(apps, vision_pair) -> Iterator[InProcessApp]:
    """`eyes` has the projector; `blind` is the same GGUF without it."""
    model, mmproj = vision_pair
    config = model_toml(
        "eyes", "llama-cpp", str(model), n_ctx=1024, threads=1, mmproj=str(mmproj)
    ) + model_toml("blind", "llama-cpp", str(model), n_ctx=1024, threads=1)
    with apps.shared(config) as running:
        yield running


def test_models_list_says_which_model_reads_images(vision_app):
    cards = {m["id"]: m for m in vision_app.client().get("/v1/models").json()["data"]}
    assert cards["eyes"]["vision"] is True
    assert cards["blind"]["vision"] is False
    assert cards["eyes"]["state"] == "READY"  # loaded: the facts are the runtime's own
