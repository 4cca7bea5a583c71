"""A chat over five turns: time to first token of each turn, default config.

Each turn re-sends the whole conversation (the replies so far and a new question), as every
OpenAI client does. With prefix reuse the batching engine reads only what no slot holds, so
turn 5 should start about as fast as turn 1 although its prompt is several times longer.
The peer `llama_cpp.server` (its prompt cache keeps the last prompt) runs the same chat.
Prints each turn's TTFT (median over runs) and turn 5 ÷ turn 1.
"""

from __future__ import annotations

import asyncio

from common import (
    SETTLE,
    SMOLLM2,
    Figure,
    chat_body,
    llama_cpp_server,
    localoip,
    median,
    model_path,
    model_toml,
    run,
    session,
    stream_chat,
)

QUESTIONS = [
    "What does a lighthouse keeper do?",
    "How did they keep the lamp lit before electricity?",
    "What was the hardest part of the job?",
    "Which famous lighthouses are still kept by people?",
    "Write a short poem about one of them.",
]
REPLY_TOKENS = 96


async def conversation(url: str, model: str, run: int) -> list[float]:
    """TTFT in seconds of each turn of one fresh conversation: its first question names the
    run, so no earlier run left it in a cache (the chat template's start may be)."""
    ttfts: list[float] = []
    messages: list[dict[str, str]] = []
    async with session() as client:
        for turn, question in enumerate(QUESTIONS):
            if turn == 0:
                question = f"Conversation {run}. {question}"
            messages.append({"role": "user", "content": question})
            body = chat_body(model, "", REPLY_TOKENS) | {"messages": messages}
            await asyncio.sleep(SETTLE)
            stream = await stream_chat(client, url, body)
            if stream.error:
                raise RuntimeError(f"{url}: {stream.error}")
            ttfts.append(stream.ttft)
            messages.append({"role": "assistant", "content": stream.text})
    return ttfts


def measure(runs: int, threads: int) -> list[Figure]:
    path = model_path(SMOLLM2)
    config = model_toml("smollm2", "llama-cpp", SMOLLM2, n_ctx=2048, threads=threads)
    results: dict[str, list[list[float]]] = {"localoip": [], "llama_cpp.server": []}
    with localoip(config) as ours, llama_cpp_server(path, threads) as peer:
        for run in range(runs):
            results["localoip"].append(asyncio.run(conversation(ours.url, "smollm2", run)))
            results["llama_cpp.server"].append(asyncio.run(conversation(peer.url, path, run)))
    figures = []
    for name, rows in results.items():
        turns = [median(run[t] for run in rows) * 1e3 for t in range(len(QUESTIONS))]
        print(f"{name:18} TTFT by turn (ms): " + "  ".join(f"{t:6.1f}" for t in turns))
        target = "<= 1.2" if name == "localoip" else ""
        figures += [
            Figure(f"TTFT turn 1, {name}", turns[0], "ms"),
            Figure(f"TTFT turn 5, {name}", turns[-1], "ms"),
            Figure(f"TTFT turn 5 ÷ turn 1, {name}", turns[-1] / turns[0], "x", target),
        ]
    return figures


def main() -> None:
    run(__doc__, measure, runs=3, threads=2)


if __name__ == "__main__":
    main()
