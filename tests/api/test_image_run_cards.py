"""Run cards of image results, over HTTP in process with a tiny random-weight
diffusers model: the card lists what made the pictures and makes them again pixel for pixel,
a replaced model file is reported with the pictures that changed, and bad ids and unfinished
images get clear 4xx answers. Plus the pure picture comparison."""

from __future__ import annotations

import base64
import io
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from localoip.app.playground.image_runs import Difference, picture_difference
from PIL import Image
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.playground import PAGE, frames, slow_images
from support.tiny_models import build_tiny_sd


def make_images(http: httpx.Client, model: str = "tiny-sd", **form: str) -> str:
    """Generate through the Images tab's route and follow the job to its end; its id."""
    answer = http.post("/ui/images", data={"model": model, "prompt": "a fox", **form}, headers=PAGE)
    assert answer.status_code == 200, answer.text
    job = re.search(r'id="image-job-([^"]+)"', answer.text)[1]
    done = list(frames(http, job, kind="images"))[-1]
    assert done["event"] == "done" and 'data-status="done"' in done["data"], done
    assert f'href="/ui/runs/{job}"' in done["data"]  # the finished card links its run card
    return job


def fields(card: str) -> dict[str, str]:
    """The run card's listed fields, name to value."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", card)
    return {name: value for name, value in pairs}


def rerun(http: httpx.Client, run_id: str) -> str:
    answer = http.post(f"/ui/runs/{run_id}/rerun", headers=PAGE)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_an_image_run_card_lists_what_made_the_pictures_and_makes_them_again(http):
    job = make_images(http, n="2", seed="41", negative_prompt="blur")
    card = http.get(f"/ui/runs/{job}")
    assert card.status_code == 200
    assert "frame-ancestors 'none'" in card.headers["content-security-policy"]
    listed = fields(card.text)
    assert listed["Model"] == "tiny-sd"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", listed["Model file digest"])
    assert listed["Server version"] == "0.1.0"
    assert listed["Seed"] == "41 42"  # picture i of seed s is seed s+i
    assert listed["Prompt"] == "a fox" and listed["Negative prompt"] == "blur"
    # The model's defaults (models.toml: 64x64, 2 steps, guidance 2) are what ran.
    assert listed["Size"] == "64x64 pixels" and listed["Steps"] == "2"
    assert listed["Guidance scale"] == "2" and listed["Pictures"] == "2"
    assert card.text.count('<img src="/ui/images/files/') == 2
    assert f'hx-post="/ui/runs/{job}/rerun"' in card.text
    verdict = rerun(http, job)
    assert 'data-outcome="identical"' in verdict, verdict
    assert "the same 2 pictures, pixel for pixel" in verdict


def test_images_made_without_a_seed_are_made_again_from_the_seeds_they_got(http):
    job = make_images(http)
    seed = int(fields(http.get(f"/ui/runs/{job}").text)["Seed"])
    assert 0 <= seed < 2**31
    assert 'data-outcome="identical"' in rerun(http, job)


def test_a_cell_of_an_image_grid_has_a_run_card_that_reproduces(http):
    answer = http.post(
        "/ui/arena/images",
        data={"model": "tiny-sd", "prompt": "a fox", "axis": "steps", "values": "1 3"},
        headers=PAGE,
    )
    cells = re.findall(r'id="image-job-([^"]+)"', answer.text)
    assert len(cells) == 2
    for cell in cells:
        list(frames(http, cell, kind="images"))
    listed = fields(http.get(f"/ui/runs/{cells[1]}").text)
    assert listed["Steps"] == "3"
    assert 'data-outcome="identical"' in rerun(http, cells[1])


@pytest.fixture(scope="module")
def swappable(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """An app whose image model is a folder the test may replace."""
    config = apps.config(model_toml("swap-sd", "diffusers", "model", steps=2, width=64, height=64))
    shutil.copytree(tiny_dir / "tiny-sd", config.parent / "model")
    with apps.shared(config) as running:
        yield running


def test_an_image_run_card_reports_a_replaced_model_and_the_pictures_that_changed(swappable):
    with swappable.client(timeout=120) as http:
        job = make_images(http, "swap-sd", n="2", seed="5")
        digest = fields(http.get(f"/ui/runs/{job}").text)["Model file digest"]
        assert 'data-outcome="identical"' in rerun(http, job)
        folder = swappable.folder / "model"
        shutil.rmtree(folder)
        build_tiny_sd(folder, seed=1)
        assert http.post("/v2/repository/models/swap-sd/unload").status_code == 200
        assert http.post("/v2/repository/models/swap-sd/load").status_code == 200
        verdict = rerun(http, job)
        assert 'data-outcome="different"' in verdict, verdict
        assert "2 of 2 pictures changed" in verdict
        assert f"The model file has changed: it was {digest}, now sha256:" in verdict
        shares = re.findall(r"([\d.]+)% of pixels differ, by up to (\d+) of 255", verdict)
        assert len(shares) == 2 and all(float(s) > 0 and int(m) > 0 for s, m in shares)
        new = re.findall(r'src="data:image/png;base64,([^"]+)"', verdict)
        assert len(new) == 2
        assert Image.open(io.BytesIO(base64.b64decode(new[0]))).size == (64, 64)


# -- bad input ------------------------------------------------------------------------------


def test_images_that_did_not_finish_have_a_card_but_nothing_to_run_again(http):
    job, first, reader = slow_images(http, "slow")
    assert first["event"] == "progress"
    assert http.post("/ui/images/stop", data={"job": job}, headers=PAGE).status_code == 200
    list(reader)
    card = http.get(f"/ui/runs/{job}")
    assert card.status_code == 200
    listed = fields(card.text)
    assert listed["Seed"] == "none: no picture was finished"
    assert listed["Status"].startswith("Stopped by you at step")
    again = http.post(f"/ui/runs/{job}/rerun", headers=PAGE)
    assert again.status_code == 409
    assert "did not finish, so there is nothing to compare" in again.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/ui/runs/no-such-images"), ("POST", "/ui/runs/no-such-images/rerun")],
)
def test_an_unknown_run_is_404(http, method, path):
    answer = http.request(method, path, headers=PAGE)
    assert answer.status_code == 404 and "no reply or image result" in answer.text, answer.text


def test_the_server_serves_on_after_a_refused_rerun(http):
    refused = http.post("/ui/runs/nothing/rerun", headers=PAGE)
    assert refused.status_code == 404
    assert http.get("/v2/health/ready").status_code == 200


# -- the picture comparison ---------------------------------------------------------------


def png(pixels: list[tuple[int, int, int]], width: int = 2, level: int = 6) -> bytes:
    image = Image.new("RGB", (width, len(pixels) // width))
    image.putdata(pixels)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=level)
    return out.getvalue()


def test_pictures_with_the_same_pixels_are_identical_even_when_their_bytes_differ():
    pixels = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (1, 2, 3)]
    a, b = png(pixels, level=0), png(pixels, level=9)
    assert a != b
    assert picture_difference(a, b) is None
    assert picture_difference(a, a) is None


def test_a_changed_pixel_is_counted_with_its_largest_channel_change():
    before = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (1, 2, 3)]
    after = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (1, 2, 103)]
    assert picture_difference(png(before), png(after)) == Difference(0.25, 100)


def test_pictures_of_other_sizes_differ_by_an_unknown_amount():
    four = [(0, 0, 0)] * 4
    assert picture_difference(png(four, width=2), png(four, width=4)) == Difference(None, None)


def test_without_pillow_unequal_bytes_differ_by_an_unknown_amount(monkeypatch):
    pixels = [(1, 1, 1)] * 4
    a, b = png(pixels, level=0), png(pixels, level=9)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` raises ImportError
    assert picture_difference(a, b) == Difference(None, None)
    assert picture_difference(a, a) is None
