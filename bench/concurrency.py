"""Concurrent chat streams: aggregate tokens/s at 1, 2, 4, 8 and 16 streams ÷ one stream.

Servers on the same GGUF (SmolLM2, the default chat model, or with --model gemma3
gemma3-270m) and threads, up together and measured in turn:
- localoip with its default config (`parallel = "auto"`: continuous batching, 8 slots for
  either model on 2 threads);
- localoip with `parallel = 1` (the serial path, one stream at a time);
- the peer `python -m llama_cpp.server`;
- when LOCALOIP_BENCH_LLAMA_SERVER names a llama-server binary (built from the llama.cpp that
  llama-cpp-python vendors), llama.cpp's own `llama-server` with 8 slots, the reference peer.

Every ratio is against the serial path's single stream, the fastest way to run one request
alone; the default config's and llama-server's also against their own one stream (issue 26's
figure), beside the ceiling the weights' kernels set on that figure (step_ceiling.py: an
engine step at 8 rows ÷ 1 row, in this process). Also: 4 concurrent `json_schema` requests ÷
one alone, on the default config. Each stream asks a different prompt for 128 greedy tokens;
rounds of 1 and 2 streams repeat (4 and 2 times) to steady the baseline. Counts interrupted
streams (ended without a finish_reason, or short of max_tokens without a stop) and errors,
reads each server's CPU use while idle, and plots aggregate tokens/s against streams.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from common import (
    GEMMA3,
    LLAMA_SERVER,
    REPO,
    SETTLE,
    SMOLLM2,
    Figure,
    Server,
    Stream,
    arguments,
    chat_body,
    idle_cpu,
    llama_cpp_server,
    llama_server,
    localoip,
    median,
    model_path,
    model_toml,
    report,
    session,
    stream_chat,
)
from step_ceiling import ceiling

PROMPTS = [
    "Write a long story about a lighthouse keeper.",
    "Write a long story about a dragon who learns to cook.",
    "Explain in detail how a steam engine works.",
    "Write a long letter from a sailor to his sister.",
    "Describe a busy market in a medieval town, at length.",
    "Write a long story about a robot who wants to paint.",
    "Explain in detail how bread is made, step by step.",
    "Write a long diary entry of an astronaut on Mars.",
    "Write a long story about a fox who opens a bakery.",
    "Explain in detail how a bicycle gear works.",
    "Write a long letter from a gardener to the king.",
    "Describe a winter night in a mountain village, at length.",
    "Write a long story about a clockmaker and a lost key.",
    "Explain in detail how rain forms, step by step.",
    "Write a long diary entry of a deep-sea diver.",
    "Describe a train journey across a desert, at length.",
]
LEVELS = (1, 2, 4, 8, 16)
DEFAULT = "localoip default"
SERIAL = "localoip parallel=1"
REFERENCE = "llama-server"  # llama.cpp's own server, when LOCALOIP_BENCH_LLAMA_SERVER is set
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "lines": {"type": "array", "items": {"type": "string", "maxLength": 60}},
    },
    "required": ["title", "lines"],
}
PLOT = REPO / "docs" / "bench-concurrency.png"
MODELS = {  # --model: the source, and the plot's title
    "smollm2": (SMOLLM2, "SmolLM2-135M Q4_1"),
    "gemma3": (GEMMA3, "gemma3-270m Q4_K_M"),
}


@dataclass
class Round:
    """n streams sent at once to one server."""

    seconds: float
    streams: list[Stream]

    @property
    def rate(self) -> float:
        """Aggregate tokens/s: every stream's tokens over the wall time of the round."""
        return sum(s.tokens for s in self.streams) / self.seconds


async def one_round(
    client: aiohttp.ClientSession, url: str, model: str, n: int, max_tokens: int
) -> Round:
    start = time.perf_counter()
    streams = await asyncio.gather(
        *(stream_chat(client, url, chat_body(model, PROMPTS[i], max_tokens)) for i in range(n))
    )
    return Round(time.perf_counter() - start, list(streams))


def plot(rates: dict[str, dict[int, float]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, by_level in rates.items():
        axes.plot(list(by_level), list(by_level.values()), marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_xticks(LEVELS, [str(n) for n in LEVELS])
    axes.set_xlabel("concurrent chat streams (128 tokens each)")
    axes.set_ylabel("aggregate tokens/s (median)")
    axes.set_ylim(bottom=0)
    axes.set_title(f"{title}, 2 threads, 2-core CPU")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path}", flush=True)


async def timed_rounds(
    servers: dict[str, tuple[Server, str]], runs: int, max_tokens: int
) -> tuple[dict[str, float], dict[str, dict[int, list[Round]]]]:
    """(idle CPU % by server, rounds by server and streams), interleaved across servers."""
    async with session() as client:
        for server, model in servers.values():
            await one_round(client, server.url, model, 1, 8)  # warm up
        idle = {
            name: await asyncio.to_thread(idle_cpu, server.process.pid)
            for name, (server, _) in servers.items()
        }
        rounds: dict[str, dict[int, list[Round]]] = {
            name: {n: [] for n in LEVELS} for name in servers
        }
        for _ in range(runs):
            for n in LEVELS:
                for _ in range(max(1, 4 // n)):  # short rounds repeat: a blip weighs less
                    for name, (server, model) in servers.items():
                        await asyncio.sleep(SETTLE)
                        round_ = await one_round(client, server.url, model, n, max_tokens)
                        rounds[name][n].append(round_)
        return idle, rounds


async def schema_rounds(url: str, model: str, runs: int, max_tokens: int) -> tuple[float, float]:
    """(one json_schema request alone, 4 at once): median aggregate tokens/s."""
    alone, four = [], []
    async with session() as client:
        for _ in range(runs):
            for n, rates in ((1, alone), (4, four)):
                await asyncio.sleep(SETTLE)
                start = time.perf_counter()
                streams = await asyncio.gather(
                    *(
                        stream_chat(client, url, schema_body(model, PROMPTS[i], max_tokens))
                        for i in range(n)
                    )
                )
                rates.append(sum(s.tokens for s in streams) / (time.perf_counter() - start))
                for s in streams:
                    if s.error or not s.tokens:
                        print(f"json_schema stream: {s.error or 'no text'} ({s.finish_reason})")
    return median(alone), median(four)


def schema_body(model: str, prompt: str, max_tokens: int) -> dict:
    body = chat_body(model, prompt, max_tokens)
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "story", "schema": SCHEMA, "strict": True},
    }
    return body


def measure(
    runs: int, max_tokens: int, threads: int, model: str, speculative: str, plot_path: Path | None
) -> list[Figure]:
    source, title = MODELS[model]
    path = model_path(source)

    def config(**options: int | str) -> str:
        return model_toml(model, "llama-cpp", source, n_ctx=2048, threads=threads, **options)

    with ExitStack() as stack:
        serial = stack.enter_context(localoip(config(parallel=1), "serial"))
        batched = stack.enter_context(localoip(config(speculative=speculative), "default"))
        peer = stack.enter_context(llama_cpp_server(path, threads))
        servers = {  # name: (server, model name in requests)
            SERIAL: (serial, model),
            DEFAULT: (batched, model),
            "llama_cpp.server": (peer, path),
        }
        if LLAMA_SERVER:
            reference = stack.enter_context(llama_server(path, threads, 2048, 8))
            servers[REFERENCE] = (reference, model)
        idle, rounds = asyncio.run(timed_rounds(servers, runs, max_tokens))
        schema_alone, schema_four = asyncio.run(schema_rounds(batched.url, model, runs, max_tokens))

    figures: list[Figure] = ceiling(path, threads)  # with the servers gone
    rates = {
        name: {n: median(r.rate for r in rows) for n, rows in by_level.items()}
        for name, by_level in rounds.items()
    }
    for name, by_level in rounds.items():
        streams = [s for rows in by_level.values() for r in rows for s in r.streams]
        interrupted = sum(s.interrupted(max_tokens) for s in streams)
        errors = [s.error for s in streams if s.error]
        line = "  ".join(f"{n}: {rates[name][n]:6.1f}" for n in LEVELS)
        print(f"{name:20} tokens/s by streams  {line}", flush=True)
        print(
            f"{'':20} {len(streams)} streams, {interrupted} interrupted, {len(errors)} errors, "
            f"idle CPU {idle[name]:.1f}%" + (f" (first: {errors[0]})" if errors else ""),
            flush=True,
        )
        for n in LEVELS:
            target = {1: ">= 0.95", 4: ">= 1.6", 8: ">= 2.2"}.get(n, "") if name == DEFAULT else ""
            ratio = rates[name][n] / rates[SERIAL][1]
            figures.append(Figure(f"{name}: {n} streams ÷ serial 1 stream", ratio, "x", target))
        if name in (DEFAULT, REFERENCE):
            for n in LEVELS[1:]:
                ratio = rates[name][n] / rates[name][1]
                target = ">= 2.2" if n == 8 and name == DEFAULT else ""
                figures.append(Figure(f"{name}: {n} streams ÷ its 1 stream", ratio, "x", target))
        target = "<= 0" if name.startswith("localoip") else ""
        figures.append(Figure(f"{name}: interrupted streams", interrupted, "", target))
        figures.append(Figure(f"{name}: errors", len(errors), "", "<= 0"))
        figures.append(Figure(f"{name}: idle CPU", idle[name], "% of a core"))
    figures.append(
        Figure(
            f"{DEFAULT}: 4 json_schema requests ÷ one alone",
            schema_four / schema_alone if schema_alone else float("nan"),
            "x",
            ">= 1.5",
        )
    )
    if plot_path is not None:
        plot(rates, title, plot_path)
    return figures


def main() -> None:
    parser = arguments(__doc__, runs=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=MODELS, default="smollm2")
    parser.add_argument(
        "--speculative",
        choices=["off", "ngram"],
        default="off",
        help="the default config's speculative option (its own rounds then speculate)",
    )
    parser.add_argument("--plot", type=Path, default=PLOT, help="where to save the PNG")
    parser.add_argument("--no-plot", dest="plot", action="store_const", const=None)
    args = parser.parse_args()
    figures = measure(
        args.runs, args.max_tokens, args.threads, args.model, args.speculative, args.plot
    )
    report(figures, args.json)


if __name__ == "__main__":
    main()
