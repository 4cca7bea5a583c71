"""Speculative decoding: prompt lookup through localoip's engine vs plain decode in process.

For each default generative model (SmolLM2-135M, gemma3-270m) and three greedy completions:
- `edit`: a 60-line function given, then asked for again with one change (a rewrite);
- `quote`: a passage given, then a question whose answer quotes it;
- `story`: free text, which prompt lookup rarely predicts.

Targets, run in turn on the same GGUF and threads, one request at a time:
- `in-process`: llama-cpp-python's `Llama.create_completion`, streamed, no speculation (the
  baseline every ratio divides by);
- `prompt lookup in process`: the same with `LlamaPromptLookupDecoding` as its draft model,
  llama-cpp-python's own speculation (the peer anchor);
- `localoip`: `/v1/completions` streamed, the model's `speculative = "ngram"`;
- `localoip, speculative off`: the same request with `"speculative": false`;
- `llama-server` and `llama-server ngram-simple`, when LOCALOIP_BENCH_LLAMA_SERVER names a
  llama-server binary (built from the llama.cpp that llama-cpp-python vendors): llama.cpp's
  own server, plain and with its prompt lookup (`--spec-type ngram-simple`, its documented
  recipe for rewriting code, at its defaults: a 12-token key and drafts of up to 48 tokens;
  `--spec-draft-n-max` does not apply to it), the reference peer;
- `localoip, drafting for itself` (SmolLM2 only): `speculative = "draft"` with the model as
  its own draft model. No two of the PyPI demo models share a vocabulary (SmolLM2's 49152
  tokens, gemma3's 262144), so this shows what the draft-model mechanism costs and how
  often its drafts are kept (all of them, but where a multi-row step's numbers differ), not
  what a smaller draft would gain.

The rate is decode tokens/s after the first token (completion_tokens from usage, or one per
chunk in process), the median of --runs. Prints the rates, the ratios to in-process, and the
server's acceptance rate and tokens per step from /metrics.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack

from common import (
    GEMMA3,
    LLAMA_SERVER,
    SETTLE,
    SMOLLM2,
    Figure,
    headers,
    llama_server,
    localoip,
    median,
    model_path,
    model_toml,
    run,
    session,
)

MODELS = {"smollm2": SMOLLM2, "gemma3": GEMMA3}
BASE, PEER = "in-process", "prompt lookup in process"
OURS, OURS_OFF = "localoip", "localoip, speculative off"
DRAFTED = "localoip, drafting for itself"
LS, LS_NGRAM = "llama-server", "llama-server ngram-simple"
LS_OPTIONS = {LS: (), LS_NGRAM: ("--spec-type", "ngram-simple")}
SELF = "smollm2-drafts"  # the served name of SmolLM2 as its own draft model

FUNCTION = '''def summarize_orders(orders, customers, since=None, currency="EUR"):
    """Totals per customer of the orders placed since a date, in one currency."""
    rates = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.04}
    if currency not in rates:
        raise ValueError(f"unknown currency {currency}")
    totals = {}
    counts = {}
    largest = {}
    skipped = 0
    for order in orders:
        if since is not None and order["date"] < since:
            skipped += 1
            continue
        customer = order["customer"]
        if customer not in customers:
            skipped += 1
            continue
        rate = rates.get(order["currency"])
        if rate is None:
            skipped += 1
            continue
        amount = order["amount"] * rate / rates[currency]
        totals[customer] = totals.get(customer, 0.0) + amount
        counts[customer] = counts.get(customer, 0) + 1
        if amount > largest.get(customer, 0.0):
            largest[customer] = amount
    rows = []
    for customer, total in totals.items():
        info = customers[customer]
        average = total / counts[customer]
        rows.append(
            {
                "customer": customer,
                "name": info["name"],
                "country": info.get("country", "unknown"),
                "orders": counts[customer],
                "total": round(total, 2),
                "average": round(average, 2),
                "largest": round(largest[customer], 2),
                "currency": currency,
            }
        )
    rows.sort(key=lambda row: row["total"], reverse=True)
    grand_total = sum(row["total"] for row in rows)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        row["share"] = round(100 * row["total"] / grand_total, 1) if grand_total else 0.0
    report = {
        "rows": rows,
        "customers": len(rows),
        "orders": sum(counts.values()),
        "skipped": skipped,
        "grand_total": round(grand_total, 2),
        "currency": currency,
    }
    if since is not None:
        report["since"] = since
    return report
'''

PASSAGE = (
    "The lighthouse at Cape Verity was built in 1873 from granite quarried on the island "
    "itself. Its lamp, first fuelled by whale oil and later by paraffin, was electrified in "
    "1931, when a diesel generator was installed in a brick shed beside the tower. The last "
    "keeper, Margaret Olsen, left in 1989, after the light was automated and connected to "
    "the mainland by a submarine cable. Today the tower is open to visitors from May to "
    "September, and the keeper's cottage houses a small museum of shipwrecks, charts and "
    "signal flags. "
)

PROMPTS = {
    "edit": (
        f"Here is a Python function:\n\n{FUNCTION}\n"
        "Here is the same function, unchanged except that the parameter `currency` is "
        "renamed to `target`:\n\n"
        'def summarize_orders(orders, customers, since=None, target="EUR"):\n'
    ),
    "quote": (
        f"Passage: {PASSAGE * 2}\n"
        "Question: What does the passage say about the lamp and the last keeper? Answer by "
        'quoting the passage word for word.\nAnswer: The passage says: "'
    ),
    "story": "Once upon a time, in a small village by the sea, there lived an old fisherman",
}


def measure(runs: int, max_tokens: int, threads: int) -> list[Figure]:
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    config = "".join(
        model_toml(name, "llama-cpp", source, n_ctx=2048, threads=threads, speculative="ngram")
        for name, source in MODELS.items()
    ) + model_toml(
        SELF, "llama-cpp", SMOLLM2, n_ctx=2048, threads=threads, speculative="draft", draft=SELF
    )
    rates: dict[tuple[str, str, str], list[float]] = {}
    speculation: dict[str, tuple[float, float]] = {}

    def note(model: str, prompt: str, target: str, rate: float) -> None:
        rates.setdefault((model, prompt, target), []).append(rate)

    def in_process(llm: llama_cpp.Llama, prompt: str) -> float:
        stamps = []
        for chunk in llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, stream=True
        ):
            if chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    async def served(
        client, url: str, model: str, prompt: str, speculative: bool | None = None
    ) -> float:
        """Decode tokens/s of a streamed completion; `speculative` is localoip's extension
        (None: not sent, for the peer)."""
        body = {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if speculative is not None:
            body["speculative"] = speculative
        stamps, tokens = [], 0
        async with client.post(url + "/v1/completions", json=body, headers=headers(url)) as reply:
            if reply.status != 200:
                raise RuntimeError(f"HTTP {reply.status}: {(await reply.read())[:200]!r}")
            async for line in reply.content:
                if not line.startswith(b"data: {"):
                    continue
                frame = json.loads(line[6:])
                if frame.get("usage"):
                    tokens = frame["usage"]["completion_tokens"]
                if any(c.get("text") for c in frame.get("choices") or []):
                    stamps.append(time.perf_counter())
        # tokens after the first one, over the time from the first text to the last
        return (tokens - 1) / (stamps[-1] - stamps[0])

    async def timed(url: str) -> None:
        async with session() as client:
            for model, source in MODELS.items():
                path = model_path(source)
                with ExitStack() as peers:  # the peers, and the in-process models
                    servers = {  # llama.cpp's own server, plain and with its prompt lookup
                        name: peers.enter_context(llama_server(path, threads, 2048, 1, *extra)).url
                        for name, extra in (LS_OPTIONS.items() if LLAMA_SERVER else ())
                    }
                    common = {
                        "model_path": path,
                        "n_ctx": 2048,
                        "n_threads": threads,
                        "verbose": False,
                    }
                    plain = llama_cpp.Llama(**common)
                    peers.callback(plain.close)
                    # logits_all: llama-cpp-python 0.3.36 keeps every position's logits with a draft
                    # model, yet sizes their array by n_batch unless asked, and a prompt longer than
                    # n_batch then fails in numpy
                    lookup = llama_cpp.Llama(
                        **common, logits_all=True, draft_model=LlamaPromptLookupDecoding()
                    )
                    peers.callback(lookup.close)
                    targets = {
                        BASE: lambda p, llm=plain: in_process(llm, p),
                        PEER: lambda p, llm=lookup: in_process(llm, p),
                    }
                    for prompt in PROMPTS.values():  # warm each one up
                        for go in targets.values():
                            go(prompt[:200])
                        for peer in servers.values():
                            await served(client, peer, model, prompt[:200])
                        await served(client, url, model, prompt[:200], True)
                        if model == "smollm2":
                            await served(client, url, SELF, prompt[:200], True)
                    for _ in range(runs):
                        for kind, prompt in PROMPTS.items():
                            for target, go in targets.items():
                                await asyncio.sleep(SETTLE)
                                note(model, kind, target, go(prompt))
                            for target, on in ((OURS, True), (OURS_OFF, False)):
                                await asyncio.sleep(SETTLE)
                                note(
                                    model,
                                    kind,
                                    target,
                                    await served(client, url, model, prompt, on),
                                )
                            for target, peer in servers.items():
                                await asyncio.sleep(SETTLE)
                                note(model, kind, target, await served(client, peer, model, prompt))
                            if model == "smollm2":
                                await asyncio.sleep(SETTLE)
                                rate = await served(client, url, SELF, prompt, True)
                                note(model, kind, DRAFTED, rate)
            async with client.get(url + "/metrics") as reply:
                speculation.update(accepted(await reply.text()))

    with localoip(config, "speculative") as ours:
        asyncio.run(timed(ours.url))

    figures = []
    for model in MODELS:
        for kind in PROMPTS:
            base = median(rates[(model, kind, BASE)])
            targets = [
                t
                for t in (BASE, PEER, OURS, OURS_OFF, LS, LS_NGRAM, DRAFTED)
                if (model, kind, t) in rates
            ]
            for target in targets:
                rate = median(rates[(model, kind, target)])
                print(f"{model:8} {kind:6} {target:30} {rate:7.1f} tokens/s", flush=True)
            goal = ">= 0.97" if kind == "story" else ">= 1.5"
            for target in (t for t in targets if t != BASE):
                rate = median(rates[(model, kind, target)])
                figures.append(
                    Figure(
                        f"{model} {kind}: {target} ÷ in-process",
                        rate / base,
                        "x",
                        goal if target == OURS else "",
                    )
                )
    for model, (rate, per_step) in speculation.items():
        figures.append(Figure(f"{model}: draft tokens accepted", rate, "ratio"))
        figures.append(Figure(f"{model}: tokens per decode step", per_step, "tokens"))
    return figures


def accepted(metrics: str) -> dict[str, tuple[float, float]]:
    """Per model, the acceptance rate and tokens per step from /metrics' counters."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name.startswith("localoip_speculative_") and sample.name.endswith("_total"):
                values[(sample.name, sample.labels["model"])] = sample.value
    found = {}
    for model in (*MODELS, SELF):
        drafted = values.get(("localoip_speculative_draft_tokens_total", model), 0.0)
        kept = values.get(("localoip_speculative_accepted_tokens_total", model), 0.0)
        steps = values.get(("localoip_speculative_steps_total", model), 0.0)
        tokens = values.get(("localoip_speculative_tokens_total", model), 0.0)
        if drafted and steps:
            found[model] = (kept / drafted, tokens / steps)
    return found


def main() -> None:
    run(__doc__, measure, runs=3, max_tokens=256, threads=2)


if __name__ == "__main__":
    main()
