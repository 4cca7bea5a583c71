"""The arena's and the embedding map's pure parts: PCA, neighbours and their overlap, the word
diff, the forms' checks, and what the store keeps of arenas and image results."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from litestar.datastructures import FormMultiDict
from localoip.app.core.errors import Conflict, InvalidInput, NotFound
from localoip.app.core.store import Database
from localoip.app.playground.arena import ArenaSettings, cell_label, first_columns, grid_values
from localoip.app.playground.embedding_map import (
    SIZE,
    map_svg,
    nearest,
    neighbour_count,
    overlap,
    pca_2d,
    points,
)
from localoip.app.playground.models import Choice
from localoip.app.playground.records import arenas, image_results
from localoip.app.playground.records.arenas import Arena, Column
from localoip.app.playground.records.image_results import ImageResult
from localoip.app.playground.records.tables import PLAYGROUND_TABLES
from localoip.app.playground.word_diff import diff_html, same_share, word_diff

PNG_64 = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (64).to_bytes(4, "big") + (48).to_bytes(4, "big")


# -- PCA -----------------------------------------------------------------------------------------


def test_pca_finds_the_directions_of_most_variance_with_their_shares() -> None:
    along = np.array([3.0, -3.0, 0.0, 0.0, 6.0, -6.0])
    across = np.array([0.0, 0.0, 1.0, -1.0, 0.0, 0.0])  # uncorrelated with `along`
    vectors = np.stack([np.zeros(6), along, across, np.zeros(6)], axis=1) + 5.0
    coords, share = pca_2d(vectors)
    assert np.allclose(coords, np.stack([along, across], axis=1))  # largest loadings positive
    assert share == pytest.approx([90 / 92, 2 / 92])


def test_pca_signs_are_fixed_whatever_the_vectors_signs() -> None:
    """An SVD may return -v for v; the largest loading of each component is made positive, so
    the same sentences give the same map, and flipping every vector mirrors it exactly."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(7, 16))
    coords, _ = pca_2d(vectors)
    again, _ = pca_2d(vectors.copy())
    assert np.array_equal(coords, again)
    mirrored, _ = pca_2d(-vectors)
    assert np.allclose(mirrored, -coords)
    centred = vectors - vectors.mean(axis=0)
    for k in range(2):
        component = np.linalg.lstsq(centred, coords[:, k], rcond=None)[0]
        assert component[np.argmax(np.abs(component))] > 0


def test_two_sentences_lie_on_one_axis_and_identical_ones_on_the_origin() -> None:
    coords, share = pca_2d(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert coords[:, 1].tolist() == [0.0, 0.0] and share.tolist() == [1.0, 0.0]
    assert abs(coords[0, 0]) == pytest.approx(np.sqrt(2) / 2)
    same, share = pca_2d(np.ones((3, 4)))
    assert same.tolist() == [[0.0, 0.0]] * 3 and share.tolist() == [0.0, 0.0]


def test_map_points_keep_their_exact_coordinates_and_fit_the_square() -> None:
    coords = np.array([[-2.0, 1.0], [4.0, -0.5], [0.0, 0.0]])
    drawn = points(coords)
    assert [(p.x, p.y) for p in drawn] == [(-2.0, 1.0), (4.0, -0.5), (0.0, 0.0)]
    assert all(0 <= v <= SIZE for p in drawn for v in (p.px, p.py))
    assert drawn[2].px == drawn[2].py == SIZE / 2
    assert drawn[0].py < SIZE / 2  # y grows upwards
    svg = str(map_svg(["<b>one</b>", "two", "three"], coords, np.array([0.7, 0.3])))
    assert svg.count('class="map-point"') == 3
    assert 'data-x="-2.0"' in svg and "&lt;b&gt;one&lt;/b&gt;" in svg and "<b>" not in svg


# -- neighbours ----------------------------------------------------------------------------------


def test_nearest_neighbours_by_cosine_with_ties_to_the_lower_index() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0], [1.0, -0.1]])
    assert nearest(vectors, 2) == [[1, 4], [0, 4], [1, 0], [2, 1], [0, 1]]
    assert nearest(vectors, 10)[0] == [1, 4, 2, 3]  # at most the n - 1 others


def test_the_neighbour_count_is_at_most_half_of_the_others() -> None:
    assert [neighbour_count(n) for n in (2, 3, 4, 5, 7, 8, 24)] == [1, 1, 1, 2, 3, 3, 3]
    assert len(nearest(np.eye(5))[0]) == 2


def test_overlap_is_the_shared_share_per_sentence() -> None:
    assert overlap([[1, 2], [0, 2], [0, 1]], [[2, 1], [2, 3], [3, 4]]) == [1.0, 0.5, 0.0]


# -- word diff -----------------------------------------------------------------------------------


def test_the_word_diff_rebuilds_both_texts() -> None:
    first = "The quick brown fox jumps over the lazy dog."
    second = "The quick red fox leaps over the dog!"
    runs = word_diff(first, second)
    assert "".join(r.text for r in runs if r.kind != "added") == first
    assert "".join(r.text for r in runs if r.kind != "removed") == second
    assert ("removed", "brown") in [(r.kind, r.text) for r in runs]
    assert ("added", "red") in [(r.kind, r.text) for r in runs]


def test_identical_texts_are_one_run_and_fully_alike() -> None:
    assert [(r.kind, r.text) for r in word_diff("a b\nc", "a b\nc")] == [("same", "a b\nc")]
    assert same_share("a b c", "a b c") == 1.0 and same_share("", "") == 1.0
    assert same_share("a b c", "x y z") == 0.0


def test_the_diff_html_escapes_the_texts() -> None:
    html = str(diff_html(word_diff("<script>x</script> ok", "<b>y</b> ok")))
    assert html.startswith("<del>&lt;script&gt;") and "<ins>&lt;b&gt;y&lt;/b&gt;</ins>" in html
    assert "<script>" not in html and "<b>" not in html


# -- forms ---------------------------------------------------------------------------------------


def form(*pairs: tuple[str, str]) -> FormMultiDict:
    return FormMultiDict(list(pairs))


def test_arena_settings_lock_one_seed_and_skip_blank_columns() -> None:
    given = form(
        ("prompt", " Hi "),
        ("model", "a"),
        ("temperature", "0.2"),
        ("model", ""),
        ("temperature", "1"),
        ("model", "b"),
        ("temperature", ""),
        ("max_tokens", "9"),
        ("blind", "on"),
    )
    settings = ArenaSettings.from_form(given)
    assert settings.prompt == "Hi" and settings.blind
    assert [(c.model, c.temperature, c.max_tokens) for c in settings.columns] == [
        ("a", 0.2, 9),
        ("b", None, 9),
    ]
    seeds = {c.seed for c in settings.columns}
    assert len(seeds) == 1 and None not in seeds  # drawn once, used by every column


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        ((("model", "a"), ("model", "b")), "Type the prompt"),
        ((("prompt", "x"), ("model", "a")), "at least two columns"),
        ((("prompt", "x"), *[("model", m) for m in "abcde"]), "at most 4 columns; there are 5"),
        ((("prompt", "x"), ("model", "a"), ("model", "b"), ("temperature", "hot")), "a number"),
        ((("prompt", "x"), ("model", "a"), ("model", "b"), ("temperature", "nan")), "between"),
        ((("prompt", "x"), ("model", "a"), ("model", "b"), ("seed", "-1")), "Seed must be"),
    ],
)
def test_bad_arena_settings_are_explained(pairs: tuple[tuple[str, str], ...], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        ArenaSettings.from_form(form(*pairs))


def test_the_form_starts_with_two_ready_models_or_one_twice_or_none() -> None:
    two = [Choice("a", "a", True), Choice("b", "b (loading)", False), Choice("c", "c", False)]
    assert first_columns(two) == ["a", "c", "", ""]
    assert first_columns([Choice("a", "a", True)]) == ["a", "a", "", ""]
    assert first_columns([]) == ["", "", "", ""]


def test_grid_values_take_commas_or_spaces() -> None:
    assert grid_values("1, 2 3,,4", "seed") == [1, 2, 3, 4]
    assert grid_values("8 2", "steps") == [8, 2]
    assert cell_label("seed", 3) == "seed 3" and cell_label("steps", 1) == "1 step"


@pytest.mark.parametrize(
    ("raw", "axis", "words"),
    [
        ("1", "seed", "2 to 6 values"),
        ("1 2 3 4 5 6 7", "seed", "there are 7"),
        ("1 1", "seed", "each value of the grid once"),
        ("1 x", "seed", "whole number"),
        ("0 2", "steps", "Steps must be from 1 to 500"),
        ("2 501", "steps", "from 1 to 500"),
    ],
)
def test_bad_grid_values_are_explained(raw: str, axis: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        grid_values(raw, axis)


# -- the store -----------------------------------------------------------------------------------


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(PLAYGROUND_TABLES.schema)
    return conn


def test_an_arena_keeps_one_vote_and_reveals_on_it(db: sqlite3.Connection) -> None:
    arena = Arena("a1", "chat", "Hi", 7, [Column("m1", "x"), Column("m2", "y")], blind=True)
    arenas.add(db, arena)
    assert arenas.get(db, "a1").hidden
    with pytest.raises(InvalidInput, match="not a side"):
        arenas.vote(db, "a1", "m3")
    voted = arenas.vote(db, "a1", "m2")
    assert voted.vote == "m2" and not voted.hidden
    stored = arenas.get(db, "a1")
    assert (stored.vote, stored.revealed, stored.seed, stored.columns) == (
        "m2",
        True,
        7,
        arena.columns,
    )
    with pytest.raises(Conflict):
        arenas.vote(db, "a1", "tie")
    with pytest.raises(NotFound):
        arenas.get(db, "nope")
    assert arenas.latest(db).id == "a1"


def test_a_text_arena_goes_with_its_conversation(db: sqlite3.Connection) -> None:
    from localoip.app.playground.records import conversations

    cid = conversations.create(db, "Arena: hi")
    arenas.add(db, Arena("a2", "chat", "hi", 1, [Column("m", "x")], conversation=cid))
    assert arenas.get(db, "a2").conversation == cid
    db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
    assert arenas.latest(db) is None


def test_image_results_keep_their_pictures_and_only_the_newest(
    db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_results, "KEEP_AT_MOST", 3)
    for i in range(4):
        image_results.add(db, ImageResult(f"r{i}", "sd", f"p{i}", {"steps": 2}))
    assert [r.id for r in image_results.recent(db)] == ["r3", "r2", "r1"]
    result = image_results.get(db, "r3")
    result.status = "done"
    image_results.finish(db, result, [(5, PNG_64 + b"rest"), (6, PNG_64)])
    stored = image_results.get(db, "r3")
    assert stored.status == "done" and [(p.seed, p.width, p.height) for p in stored.pictures] == [
        (5, 64, 48),
        (6, 64, 48),
    ]
    assert image_results.png(db, stored.pictures[0].id) == PNG_64 + b"rest"
    assert stored.pictures[0].url == f"/ui/images/files/{stored.pictures[0].id}.png"
    image_results.add(db, ImageResult("grid", "sd", "p", {}), arena="a1")
    assert "grid" not in [r.id for r in image_results.recent(db)]  # an arena's, not listed
    with pytest.raises(NotFound):
        image_results.found(db, "r0")  # the oldest made room


def test_a_restart_marks_running_images_interrupted(tmp_path: Path) -> None:
    async def scenario() -> ImageResult | None:
        first = Database(tmp_path / "s.db", (PLAYGROUND_TABLES,))
        await first.run(lambda db: image_results.add(db, ImageResult("r", "sd", "p")))
        await first.close()
        second = Database(tmp_path / "s.db", (PLAYGROUND_TABLES,))
        await second.start()
        try:
            return await second.run(lambda db: image_results.get(db, "r"))
        finally:
            await second.close()

    found = asyncio.run(scenario())
    assert found is not None and found.status == "interrupted"
