"""Where a cached prefix may end when prompts hold images (slots.py): never inside an image,
and only where both the cached prompt's reading and the new one's ended a batch."""

from __future__ import annotations

from localoip.runtimes.llamacpp.slots import Span, aligned, common_prefix, outside

IMAGE = [Span(20, 56, 1)]  # an image at positions 20..55, in prompts read 16 tokens a batch


def test_a_prefix_inside_an_image_goes_back_to_its_start():
    assert outside(40, IMAGE) == 20
    assert outside(20, IMAGE) == 20
    assert outside(56, IMAGE) == 56


def test_text_prompts_keep_whole_chunks():
    assert aligned(47, 16, [], []) == 32
    assert aligned(15, 16, [], []) == 0


def test_the_same_image_in_both_prompts_is_kept_to_its_end():
    assert aligned(60, 16, IMAGE, IMAGE) == 56


def test_an_image_where_the_cached_prompt_had_text_keeps_only_whole_chunks_before_it():
    # the cached prompt read positions 16..31 in one batch: its cells at 16..19 came from a
    # batch the new prompt would not read, so reading them afresh could differ
    assert aligned(20, 16, IMAGE, []) == 16
    assert aligned(20, 16, IMAGE, [Span(20, 40, 1)]) == 20  # another image there: its start


def test_no_chunk_edge_inside_an_image_counts():
    assert aligned(50, 16, IMAGE, IMAGE) == 20  # 48 lies inside the image


def test_image_keys_compare_as_64_bit_values():
    key = -1 - 0xFFFFFFFFFFFFFF  # an image key needs more than 32 bits
    assert common_prefix([5, key, key], [5, key, key - 1]) == 2
