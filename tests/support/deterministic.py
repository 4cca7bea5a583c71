"""The deterministic-output scenario both the tiny model's and the real models' tests run: the
same greedy request alone, after a cache hit, and beside other requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from openai import AsyncOpenAI

STORY = (
    "The lighthouse keeper climbed the stairs every evening at dusk, counting the steps as "
    "his father had, one hundred and twelve of them, worn in the middle by a century of boots. "
    "At the top he trimmed the wick, wiped the great lens with a soft cloth and looked out at "
    "the grey water, where the fishing boats were coming home one after another. "
)
ENDINGS = [
    "That night a storm",
    "His daughter wrote that",
    "The supply boat was late, so",
    "Nobody in the village knew",
    "When the lamp failed,",
    "In the spring the gulls",
    "The inspector arrived on a Tuesday and",
]
"""Prompts are STORY + an ending: on gemma3-270m's engine, greedy text without
`deterministic` differed for 2 of these 7 after a cache hit and for 2 of the first 4 beside
other requests."""


@dataclass
class Repeats:
    """Each prompt's text three ways, and the prompt tokens the second found cached."""

    alone: list[str]
    cached: list[str]
    shared: list[str]
    cached_tokens: list[int]


async def repeats(client: AsyncOpenAI, model: str, deterministic: bool | None = True) -> Repeats:
    """Each prompt (STORY + an ending) as a greedy 24-token completion with `deterministic`:
    alone after an unrelated prompt, right after a prompt that shares all but its ending (its
    start then comes from the cache), and sent with 3 other greedy requests at once."""
    extra = {} if deterministic is None else {"extra_body": {"deterministic": deterministic}}

    async def complete(prompt: str, tokens: int = 24, **more) -> tuple[str, int]:
        reply = await client.completions.create(
            model=model, prompt=prompt, max_tokens=tokens, temperature=0, **more
        )
        details = reply.usage.prompt_tokens_details if reply.usage else None
        return reply.choices[0].text, (details.cached_tokens or 0) if details else 0

    out = Repeats([], [], [], [])
    for i, ending in enumerate(ENDINGS):
        await complete(f"Unrelated text number {i}.", 3)
        out.alone.append((await complete(STORY + ending, **extra))[0])
        await complete(STORY + ENDINGS[i - 1], 3)
        text, cached = await complete(STORY + ending, **extra)
        out.cached.append(text)
        out.cached_tokens.append(cached)
    for ending in ENDINGS:
        others = [f"{other} {STORY}" for other in ENDINGS if other != ending][:3]
        together = await asyncio.gather(
            complete(STORY + ending, **extra), *(complete(other) for other in others)
        )
        out.shared.append(together[0][0])
    return out
