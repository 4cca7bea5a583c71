"""What reading a chat reply in its family's format costs a generated token: a ChatReply
(runtimes/llamacpp/chat_reply.py, what the engine and the serial path call once a delta) fed
a long reply a token at a time (4 characters), for Qwen3's think tags with a Hermes call,
gpt-oss's harmony channels, and a plain answer with no format to read. No model runs: the
figure is the reader's own time per token, beside a decode step's ~10 ms on a CPU."""

from __future__ import annotations

import time

from common import Figure, median, run
from localoip.runtimes.capabilities import TextDelta, Tool
from localoip.runtimes.llamacpp.chat_reply import ChatReply
from localoip.runtimes.llamacpp.formats import families
from localoip.runtimes.llamacpp.formats.reader import ReplyReader

TOOLS = (Tool("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}),)
WORDS = "The user asks about the weather in Paris, so I should look it up first. "


def replies(tokens: int) -> dict[str, tuple[families.Format, str]]:
    text = (WORDS * (tokens * 4 // len(WORDS) + 1))[: tokens * 2]
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "' + text[:200] + '"}}'
    return {
        "qwen3 think + call": (
            families.HERMES,
            f"<think>\n{text}\n</think>\n\n{call}\n</tool_call>",
        ),
        "gpt-oss harmony": (
            families.GPT_OSS,
            f"<|channel|>analysis<|message|>{text}<|end|><|start|>assistant"
            f"<|channel|>final<|message|>{text}",
        ),
        "plain answer": (families.recognise(None), text + text),
    }


def read_once(fmt: families.Format, text: str) -> tuple[float, int]:
    reply = ChatReply(ReplyReader(fmt, TOOLS))
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    start = time.perf_counter()
    for n, piece in enumerate(pieces, 1):
        reply.read(TextDelta(piece), n)
        reply.force()
    reply.read(TextDelta("", "stop"), len(pieces))
    return time.perf_counter() - start, len(pieces)


def measure(runs: int, tokens: int) -> list[Figure]:
    figures = []
    for name, (fmt, text) in replies(tokens).items():
        times = []
        for _ in range(runs):
            seconds, count = read_once(fmt, text)
            times.append(seconds / count)
        figures.append(
            Figure(f"reply reader, {name}: per token ({tokens} tokens)", median(times) * 1e6, "µs")
        )
    return figures


if __name__ == "__main__":
    run(__doc__, measure, runs=5, tokens=2000)
