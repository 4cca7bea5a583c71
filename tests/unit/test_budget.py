"""The memory budget's pure parts: sizes as people write them, and which model unloads first."""

from __future__ import annotations

import pytest
from localoip.app.core.config import ConfigError, load_settings
from localoip.app.core.memory import memory_bytes, physical_memory
from localoip.app.core.models.budget import DoesNotFit, Resident, to_unload

MIB = 2**20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (12884901888, 12884901888),
        ("12GiB", 12 * 2**30),
        ("512 MiB", 512 * MIB),
        ("512mib", 512 * MIB),
        ("1.5GB", 1_500_000_000),
        ("800M", 800_000_000),
        ("2048", 2048),
        (None, None),
    ],
)
def test_memory_sizes_read_as_bytes(text, expected):
    assert memory_bytes(text) == expected


def test_a_share_of_ram_is_that_share_of_this_machine():
    assert memory_bytes("50%") == physical_memory() // 2
    assert memory_bytes("100%") == physical_memory()


@pytest.mark.parametrize("bad", ["lots", "12 GiBs", "-1GiB", "0", 0, -5, "0%", "150%", True])
def test_a_size_that_is_not_one_is_refused_with_examples(bad):
    with pytest.raises(ValueError, match="'12GiB'"):
        memory_bytes(bad)


def test_the_config_names_a_bad_budget(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text('[server]\nmax_memory = "a lot"\n')
    with pytest.raises(ConfigError, match=r"\[server\].*max_memory 'a lot' is not a size"):
        load_settings(config)
    config.write_text("[server]\nmax_loaded_models = 0\n")
    with pytest.raises(ConfigError, match=r"max_loaded_models"):
        load_settings(config)
    config.write_text('[server]\nload = "lazy"\n')
    with pytest.raises(ConfigError, match=r"load"):
        load_settings(config)


def resident(name: str, size_mib: int, last_used: float, idle: bool = True) -> Resident:
    return Resident(name, size_mib * MIB, last_used, idle)


def test_the_least_recently_used_idle_model_unloads_first():
    residents = [resident("a", 100, 3.0), resident("b", 100, 1.0), resident("c", 100, 2.0)]
    assert to_unload("d", 100 * MIB, residents, 3, None) == ["b"]
    assert to_unload("d", 100 * MIB, residents, 2, None) == ["b", "c"]
    assert to_unload("d", 100 * MIB, residents, 4, None) == []


def test_memory_unloads_as_many_as_it_takes_and_no_more():
    residents = [resident("a", 300, 1.0), resident("b", 100, 2.0), resident("c", 500, 3.0)]
    assert to_unload("d", 200 * MIB, residents, None, 1000 * MIB) == ["a"]
    assert to_unload("d", 500 * MIB, residents, None, 1000 * MIB) == ["a", "b"]
    assert to_unload("d", 100 * MIB, residents, None, 1000 * MIB) == []


def test_busy_models_are_never_unloaded_and_the_refusal_names_them():
    residents = [resident("a", 100, 1.0, idle=False), resident("b", 100, 2.0)]
    assert to_unload("c", 10 * MIB, residents, 2, None) == ["b"]
    with pytest.raises(
        DoesNotFit, match=r"'c' .* does not fit while a is busy .*max_loaded_models = 1"
    ):
        to_unload("c", 10 * MIB, residents, 1, None)


def test_a_model_bigger_than_the_whole_budget_says_so():
    with pytest.raises(
        DoesNotFit, match=r"'big' needs about 2,048 MiB, more than max_memory \(1,024 MiB\)"
    ):
        to_unload("big", 2048 * MIB, [], None, 1024 * MIB)
