"""The playground's image results across a crash of the real server: pictures made before it
are kept, and a job cut short by it says so after the restart."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from support.configs import tiny_sd
from support.playground import PAGE, slow_images
from support.servers import Server


def image_streams(html: str) -> list[str]:
    return re.findall(r'sse-connect="(/ui/images/[^"/]+/stream)"', html)


def test_images_are_kept_across_a_crash_and_one_cut_short_says_so(
    tiny_dir: Path, tmp_path: Path, launch: Callable[..., Server]
) -> None:
    config = tmp_path / "models.toml"
    config.write_text('[server]\nstore_path = "store.db"\n\n' + tiny_sd(tiny_dir))
    server = launch(config)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            made = http.post(
                "/ui/images", data={"model": "tiny-sd", "prompt": "kept"}, headers=PAGE
            )
            done = http.get(image_streams(made.text)[0]).text
            picture = re.search(r'<img src="([^"]+)"', done)[1]
            cut_id, first, _ = slow_images(http, "cut")
            assert first["event"] == "progress" and "Step 1 of 500" in first["data"]
    finally:
        # Killed while "cut" is being made (a clean stop ends it, saying why, and keeps that).
        server.process.kill()
        server.process.wait()
    server = launch(config, log="restarted.log")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        page = http.get("/").text
        assert f'<img src="{picture}"' in page
        png = http.get(picture)
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        assert f'id="image-job-{cut_id}" data-status="interrupted"' in page
        assert "The server stopped while these images were being made." in page
        gone = http.get(f"/ui/images/{cut_id}/stream").text
        assert "event: done" in gone and 'data-status="interrupted"' in gone
