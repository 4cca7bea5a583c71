"""Continuous batching on the tiny F32 GGUF: batched generations equal the serial path's."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import (
    Cancel,
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Emit,
    InputError,
    Sampling,
    TextDelta,
    TextResult,
    Tool,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import DraftModel, LlamaCppOptions
from support.tiny_models import build_tiny_gguf

SLOTS = 4
TOPICS = ["cats", "dogs", "the sea", "Paris and its many wonderful old museums", "x", "1 2 3"]

Submit = Callable[[ChatRequest | CompletionRequest, Emit], Cancel | None]


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gguf(tmp_path_factory.mktemp("batch") / "tiny.gguf")


def load(gguf: Path, **options: object) -> LlamaCppRuntime:
    runtime = LlamaCppRuntime(str(gguf), LlamaCppOptions(n_ctx=512, threads=1, **options))
    runtime.load()
    return runtime


@pytest.fixture(scope="module", params=["off", "ngram", "draft"])
def runtime(gguf: Path, request: pytest.FixtureRequest) -> Iterator[LlamaCppRuntime]:
    # 16-token steps: prompts (30-70 tokens) are read in chunks between decode steps. Seeded
    # requests are batched too (reproducible=false), to compare them with the serial path.
    # Each test runs without speculation and with it (prompt lookup, and the model as its own
    # draft model, whose unconstrained, unpenalised drafts grammars and penalties refuse):
    # the same results.
    mode = request.param
    draft = DraftModel("tiny", "path", str(gguf)) if mode == "draft" else None
    runtime = load(
        gguf, parallel=SLOTS, parallel_batch=16, reproducible=False, speculative=mode, draft=draft
    )
    yield runtime
    runtime.unload()


class Stream:
    """What the engine emits for one request, gathered from its thread."""

    def __init__(self, submit: Submit, request: ChatRequest | CompletionRequest) -> None:
        self.items: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
        cancel = submit(request, self.items.put)
        assert cancel is not None
        self.cancel = cancel

    def deltas(self) -> list[TextDelta]:
        """Every delta up to the end; raises the error if one came instead."""
        deltas = []
        while (item := self.items.get(timeout=60)) is not None:
            if isinstance(item, BaseException):
                raise item
            deltas.append(item)
        return deltas

    def result(self) -> TextResult:
        deltas = self.deltas()
        last = deltas[-1]
        assert last.usage is not None and all(d.finish_reason is None for d in deltas[:-1])
        text = "".join(d.text for d in deltas)
        finish = last.finish_reason or ""
        return TextResult(text, finish, *last.usage, stop_sequence=last.stop_sequence)


def chat(text: str, **sampling: object) -> ChatRequest:
    return ChatRequest([ChatMessage("user", text)], Sampling(**sampling))


def submitter(runtime: LlamaCppRuntime, request: ChatRequest | CompletionRequest) -> Submit:
    return runtime.chat_batched if isinstance(request, ChatRequest) else runtime.complete_batched


def batched(
    runtime: LlamaCppRuntime, requests: list[ChatRequest] | list[CompletionRequest]
) -> list[TextResult]:
    """All requests submitted at once; their results in order."""
    streams = [Stream(submitter(runtime, r), r) for r in requests]
    return [s.result() for s in streams]


def serial(
    runtime: LlamaCppRuntime, requests: list[ChatRequest] | list[CompletionRequest]
) -> list[TextResult]:
    """The serial path's results, without its count of cached prompt tokens (the two paths
    keep different caches; Stream.result leaves it out too)."""
    results = [
        runtime.chat(r) if isinstance(r, ChatRequest) else runtime.complete(r) for r in requests
    ]
    return [replace(r, cached_tokens=0) for r in results]


def test_the_threads_set_read_prompts_too(runtime):
    """`threads = 1` is one thread for prompts as well as tokens, on both paths (llama-cpp-
    python would read prompts on every core)."""
    llm = runtime.llm
    assert (llm.n_threads, llm.n_threads_batch) == (1, 1)
    assert llm.context_params.n_threads_batch == 1


def test_greedy_chats_over_more_requests_than_slots_equal_the_serial_ones(runtime):
    requests = [chat(f"Tell me about {t}", temperature=0, max_tokens=24) for t in TOPICS]
    results = batched(runtime, requests)
    assert results == serial(runtime, requests)
    assert {r.finish_reason for r in results} == {"length"}
    assert all(r.completion_tokens == 24 and r.prompt_tokens > 20 for r in results)


def test_a_chat_over_turns_reuses_its_cached_prefix_and_equals_a_cold_read(runtime):
    """Each turn re-sends the conversation; the engine reads only what its slots do not hold
    (the serial path reads every prompt afresh in fixed chunks), and the replies agree."""
    messages = [ChatMessage("user", "Tell me about cats")]
    engine = runtime.engine
    read_before = 0
    for turn in range(5):
        request = ChatRequest(list(messages), GREEDY_20)
        deltas = Stream(runtime.chat_batched, request).deltas()
        reply = gather(deltas)
        assert replace(reply, cached_tokens=0, speculation=None) == serial(runtime, [request])[0], (
            f"turn {turn + 1}"
        )
        if turn:  # everything the last turn read was found in the cache
            assert read_before <= reply.cached_tokens < reply.prompt_tokens
        read_before = reply.prompt_tokens
        messages += [ChatMessage("assistant", reply.text), ChatMessage("user", TOPICS[turn])]
    # Two requests sharing a prefix, at once: the running one's cells are shared, not copied.
    twins = [chat("Tell me about dogs", **GREEDY_KW), chat("Tell me about dogs!", **GREEDY_KW)]
    assert batched(runtime, twins) == serial(runtime, twins)
    assert engine is not None and engine.free_slots == SLOTS


GREEDY_KW = dict(temperature=0, max_tokens=20)
GREEDY_20 = Sampling(**GREEDY_KW)


def test_greedy_completions_equal_the_serial_ones(runtime):
    requests = [CompletionRequest(f"Once upon {t}", Sampling(temperature=0)) for t in TOPICS]
    results = batched(runtime, requests)
    assert results == serial(runtime, requests)
    assert len({r.text for r in results}) > 1  # different prompts, different continuations
    assert {r.completion_tokens for r in results} == {16}  # llama-cpp-python's default


def test_seeded_sampling_with_penalties_and_bias_equals_the_serial_path(runtime):
    settings = dict(temperature=0.9, top_k=20, top_p=0.9, max_tokens=40, logit_bias={40: 3.0})
    penalties = dict(frequency_penalty=0.5, presence_penalty=0.3, repeat_penalty=1.2)
    requests = [
        chat(f"Tell me about {t}", seed=i, **settings, **(penalties if i % 2 else {}))
        for i, t in enumerate(TOPICS)
    ]
    results = batched(runtime, requests)
    assert results == serial(runtime, requests)
    assert len({r.text for r in results}) == len(requests)


def test_stop_strings_end_the_text_before_them_as_the_serial_path_does(runtime):
    requests = [
        chat(f"Tell me about {t}", temperature=0.9, seed=i, stop=("e", "OA<", "@"))
        for i, t in enumerate(TOPICS)
    ]
    results = batched(runtime, requests)
    assert results == serial(runtime, requests)
    assert {r.finish_reason for r in results} == {"stop"}
    assert not any(stop in r.text for r in results for stop in ("e", "OA<", "@"))
    # Each result names the stop string that ended it (Anthropic's `stop_sequence`).
    assert all(r.stop_sequence in ("e", "OA<", "@") for r in results)


def test_max_tokens_and_the_context_end_give_length_as_the_serial_path_does(runtime):
    requests = [chat("Hi", temperature=0, max_tokens=5), chat("Hello there", temperature=0)]
    results = batched(runtime, requests)
    assert results == serial(runtime, requests)
    short, unlimited = results
    assert (short.finish_reason, short.completion_tokens, short.stop_sequence) == (
        "length",
        5,
        None,
    )
    # No max_tokens: until the context is full, as llama-cpp-python's chat does.
    assert unlimited.finish_reason == "length"
    assert unlimited.prompt_tokens + unlimited.completion_tokens == 512


def test_text_streams_in_pieces_and_usage_comes_last(runtime):
    deltas = Stream(runtime.chat_batched, chat("Hi", temperature=0, max_tokens=12)).deltas()
    assert len(deltas) > 2
    assert deltas[-1].finish_reason == "length" and deltas[-1].usage is not None
    assert all(d.text for d in deltas[:-1])


def test_cancelled_sequences_free_their_slots_and_cells(runtime):
    engine = runtime.engine
    running = [Stream(runtime.chat_batched, chat(f"Tell me about {t}")) for t in TOPICS[:SLOTS]]
    waiting = Stream(runtime.chat_batched, chat("never run"))
    waiting.cancel()  # first, so that no slot a cancelled one frees can take it
    # Each is cancelled as soon as it has started generating: a speculating one could
    # otherwise reach the end of its context while the others start.
    for stream in running:
        stream.items.get(timeout=60)
        stream.cancel()
    # Reusing the slots gives the serial path's text: the old sequences left no cells behind.
    requests = [chat(f"Tell me about {t}", temperature=0, max_tokens=20) for t in TOPICS]
    assert batched(runtime, requests) == serial(runtime, requests)
    assert engine is not None and engine.free_slots == SLOTS
    assert waiting.items.empty()
    for stream in running:
        rest = []
        while not stream.items.empty():
            rest.append(stream.items.get())
        assert all(isinstance(item, TextDelta) and item.finish_reason is None for item in rest)


HI = [ChatMessage("user", "Hi")]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "ok": {"type": "boolean"}},
    "required": ["name", "ok"],
}
WEATHER = Tool("weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
GREEDY = Sampling(temperature=0, max_tokens=40)
EVERY_KIND = {
    "json_schema": ChatRequest(HI, GREEDY, json_schema=SCHEMA),
    "tools_forced": ChatRequest(HI, GREEDY, tools=(WEATHER,), tool_choice="weather"),
    "tools_required": ChatRequest(HI, GREEDY, tools=(WEATHER,), tool_choice="required"),
    "tools_auto": ChatRequest(HI, GREEDY, tools=(WEATHER,), tool_choice="auto"),
    "tools_auto_with_schema": ChatRequest(
        HI, GREEDY, tools=(WEATHER,), tool_choice="auto", json_schema=SCHEMA
    ),
    "chat_logprobs": ChatRequest(HI, GREEDY, logprobs=3),
    "chat_logprobs_sampled": ChatRequest(
        HI, Sampling(temperature=1.0, seed=5, max_tokens=30, logit_bias={40: 2.0}), logprobs=2
    ),
    "echo": CompletionRequest("Hi there", Sampling(temperature=0), echo=True),
    "logprobs": CompletionRequest("Hi", Sampling(temperature=0), logprobs=0),
    "logprobs_top": CompletionRequest("Hi", Sampling(temperature=0, max_tokens=9), logprobs=4),
}


def assert_same(got: TextResult, want: TextResult) -> None:
    """Equal results, but for tool call ids (random per reply) and logprobs, which must agree
    to 1e-3: the tokens are identical, but logits differ with the batch's shape and where a
    sequence's cells lie in the KV cache (by ~1e-7 without flash attention; by up to ~1e-4
    with it, the default, whose CPU kernel sums the values in F16)."""
    calls = tuple(replace(c, id="") for c in got.tool_calls)
    assert calls == tuple(replace(c, id="") for c in want.tool_calls)
    plain = dict(tool_calls=(), logprobs=None, cached_tokens=0, speculation=None)
    assert replace(got, **plain) == replace(want, **plain)
    assert (got.logprobs is None) == (want.logprobs is None)
    for a, b in zip(got.logprobs or (), want.logprobs or (), strict=True):
        assert (a.token, a.token_bytes, a.top_bytes) == (b.token, b.token_bytes, b.top_bytes)
        assert [t for t, _ in a.top] == [t for t, _ in b.top]
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
        assert [v for _, v in a.top] == pytest.approx([v for _, v in b.top], abs=1e-3)


def test_every_request_kind_runs_in_the_engine_with_the_serial_paths_output(runtime):
    """Grammars, tool calls, logprobs and echo, all in one shared batch with plain chats:
    each whole result (text, calls, logprobs, usage) equals the serial path's."""
    plain = [chat(f"Tell me about {t}", temperature=0, max_tokens=30) for t in TOPICS]
    requests = [*EVERY_KIND.values(), *plain]
    streams = [Stream(submitter(runtime, r), r) for r in requests]
    results = [gather(s.deltas()) for s in streams]
    for got, want in zip(results, serial(runtime, requests), strict=True):
        assert_same(got, want)


@pytest.mark.parametrize("name", list(EVERY_KIND))
def test_each_kind_equals_the_serial_path_calls_and_logprobs_included(runtime, name):
    request = EVERY_KIND[name]
    others = [Stream(runtime.chat_batched, chat(f"Tell me about {t}")) for t in TOPICS[:2]]
    deltas = Stream(submitter(runtime, request), request).deltas()
    for other in others:
        other.cancel()
    assert_same(gather(deltas), serial(runtime, [request])[0])


def test_greedy_grammar_replies_equal_the_serial_paths_with_penalties_and_a_bias(runtime):
    """A refused greedy pick is replaced by the best allowed token of a shortlist (sampling.py),
    the one llama-cpp-python's whole-vocabulary grammar pass picks: with a repeat penalty and
    a bias towards a token the grammar mostly refuses, so the shortlist decides most steps."""
    settings = Sampling(temperature=0, max_tokens=40, repeat_penalty=1.3, logit_bias={40: 8.0})
    requests = [
        ChatRequest([ChatMessage("user", f"Describe {t}")], settings, json_schema=SCHEMA)
        for t in TOPICS
    ]
    for got, want in zip(batched(runtime, requests), serial(runtime, requests), strict=True):
        assert_same(got, want)
        assert got.text.startswith("{")


def test_schema_and_forced_tool_replies_parse_as_strict_json(runtime):
    schema = batched(runtime, [EVERY_KIND["json_schema"]])[0]
    assert schema.finish_reason == "stop"
    assert json.loads(schema.text).keys() == {"name", "ok"}
    streams = [Stream(runtime.chat_batched, EVERY_KIND["tools_forced"]) for _ in range(2)]
    for stream in streams:
        result = gather(stream.deltas())
        assert result.finish_reason in ("tool_calls", "length")
        if result.finish_reason == "tool_calls":
            (call,) = result.tool_calls
            assert call.name == "weather" and isinstance(json.loads(call.arguments), dict)


def test_top_logprobs_are_exactly_k_and_the_limit_holds(runtime):
    result = gather(Stream(runtime.complete_batched, EVERY_KIND["logprobs_top"]).deltas())
    assert result.completion_tokens == 9 and result.logprobs is not None
    assert len(result.logprobs) == 9 and all(len(lp.top) == 4 for lp in result.logprobs)


def test_echo_puts_the_prompt_before_the_text(runtime):
    echo = gather(Stream(runtime.complete_batched, EVERY_KIND["echo"]).deltas())
    plain = CompletionRequest("Hi there", Sampling(temperature=0))
    assert echo.text == "Hi there" + gather(Stream(runtime.complete_batched, plain).deltas()).text


def test_echo_with_logprobs_takes_the_serial_path(runtime):
    request = CompletionRequest("Hi", echo=True, logprobs=1)
    assert runtime.complete_batched(request, print) is None


def test_a_suffix_needs_fill_in_the_middle_tokens_on_both_paths(runtime):
    request = CompletionRequest("Hi", suffix="!")
    with pytest.raises(InputError, match="fill-in-the-middle") as error:
        Stream(runtime.complete_batched, request).deltas()
    assert error.value.param == "suffix"
    with pytest.raises(InputError, match="fill-in-the-middle"):
        runtime.complete(request)


def test_seeded_requests_run_alone_unless_reproducible_is_off(gguf):
    runtime = load(gguf, parallel=2)
    try:
        assert runtime.chat_batched(chat("Hi", seed=1), print) is None
        assert runtime.complete_batched(CompletionRequest("Hi", Sampling(seed=1)), print) is None
        greedy = chat("Hi", max_tokens=2, temperature=0)
        assert Stream(runtime.chat_batched, greedy).deltas()  # greedy alone is batched
    finally:
        runtime.unload()


def test_deterministic_requests_run_alone_by_request_or_by_the_models_option(gguf):
    def batched(runtime: LlamaCppRuntime, deterministic: bool | None) -> bool:
        sampling = Sampling(max_tokens=2, temperature=0, deterministic=deterministic)
        sink: list[object] = []
        chat = runtime.chat_batched(ChatRequest([ChatMessage("user", "Hi")], sampling), sink.append)
        completion = runtime.complete_batched(CompletionRequest("Hi", sampling), sink.append)
        assert (chat is None) == (completion is None)
        return chat is not None

    plain, deterministic = load(gguf, parallel=2), load(gguf, parallel=2, deterministic=True)
    try:
        assert [batched(plain, d) for d in (None, False, True)] == [True, True, False]
        assert [batched(deterministic, d) for d in (None, False, True)] == [False, True, False]
    finally:
        plain.unload()
        deterministic.unload()


def test_tools_with_tool_choice_none_are_batched(runtime):
    request = ChatRequest(
        [ChatMessage("user", "Hi")], Sampling(temperature=0, max_tokens=8), (Tool("f"),), "none"
    )
    assert batched(runtime, [request]) == serial(runtime, [request])


def test_parallel_1_has_no_engine(gguf):
    runtime = load(gguf, parallel=1)
    try:
        assert runtime.engine is None
        assert runtime.chat_batched(chat("Hi"), print) is None
        assert runtime.complete_batched(CompletionRequest("Hi"), print) is None
    finally:
        runtime.unload()


def test_a_prompt_beyond_the_context_is_an_input_error(runtime):
    streams = [
        Stream(runtime.chat_batched, chat("word " * 300)),
        Stream(runtime.complete_batched, CompletionRequest("word " * 600)),
    ]
    for stream, param in zip(streams, ["messages", "prompt"], strict=True):
        with pytest.raises(InputError, match="exceed context window of 512") as error:
            stream.deltas()
        assert (error.value.param, error.value.code) == (param, "context_length_exceeded")
    assert runtime.engine is not None and runtime.engine.free_slots == SLOTS


def test_bad_settings_are_input_errors(runtime):
    bias = CompletionRequest("Hi", Sampling(logit_bias={999: 1}))
    stream = Stream(runtime.complete_batched, bias)
    with pytest.raises(InputError) as error:
        stream.deltas()
    assert error.value.param == "logit_bias"
    with pytest.raises(InputError, match="must not be empty"):
        Stream(runtime.complete_batched, CompletionRequest("")).deltas()


def test_unloading_ends_running_and_waiting_requests(gguf):
    runtime = load(gguf, parallel=2)
    streams = [Stream(runtime.chat_batched, chat(f"Tell me about {t}")) for t in TOPICS[:4]]
    streams[0].items.get(timeout=60)  # generation is under way
    runtime.unload()
    for stream in streams:
        with pytest.raises(RuntimeError, match="unloaded"):
            stream.deltas()


class Stepped:
    """An engine driven step by step from the test: what each request got, and at which step."""

    def __init__(self, runtime: LlamaCppRuntime) -> None:
        assert runtime.engine is not None
        self.runtime = runtime
        self.engine = runtime.engine
        self.engine.adopt(lambda: None)  # no thread of its own: steps are ours
        self.step = 0
        self.tokens: dict[int, list[int]] = {}  # request -> the step of each of its tokens
        self.ended: dict[int, int] = {}  # request -> the step it ended in

    def submit(self, key: int, request: ChatRequest | CompletionRequest) -> None:
        self.tokens[key] = []

        def emit(item: TextDelta | BaseException | None) -> None:
            if isinstance(item, BaseException):
                raise item
            if item is None:
                self.ended[key] = self.step
            else:  # logprobs are asked for, one per token, so tokens are counted exactly
                self.tokens[key] += [self.step] * len(item.logprobs or ())

        assert submitter(self.runtime, request)(request, emit) is not None

    def run(self) -> None:
        while self.engine.busy:
            self.step += 1
            self.engine.step()


def test_sixteen_requests_on_four_slots_start_in_arrival_order_as_slots_free(gguf):
    """Fairness: FIFO admission, and a freed slot goes to the next waiting request at the next
    step, so no request waits longer than the requests ahead of it take."""
    runtime = load(gguf, parallel=4, parallel_batch=256)  # four prompts fit in one step
    try:
        stepped = Stepped(runtime)
        lengths = [6 + 5 * (i % 4) for i in range(16)]
        for i, n in enumerate(lengths):
            message = ChatMessage("user", f"Tell me about {TOPICS[i % 6]}")
            sampling = Sampling(temperature=0, max_tokens=n)
            stepped.submit(i, ChatRequest([message], sampling, logprobs=0))
        stepped.run()
        assert [len(stepped.tokens[i]) for i in range(16)] == lengths  # nothing cut short
        first = [stepped.tokens[i][0] for i in range(16)]
        assert first == sorted(first)  # started in the order they came
        for k in range(4, 16):
            # the k-th request takes the slot the (k-3)-th finished request left: its prompt
            # is read in the next step, its first token is sampled from it
            freed = sorted(stepped.ended.values())[k - 4]
            assert first[k] <= freed + 1, (k, first[k], freed)
    finally:
        runtime.unload()


def test_a_long_prompt_is_read_in_chunks_while_running_streams_get_a_token_every_step(gguf):
    runtime = load(gguf, parallel=4, parallel_batch=16)
    try:
        stepped = Stepped(runtime)
        stepped.submit(0, CompletionRequest("Once upon", Sampling(max_tokens=200), logprobs=0))
        while not stepped.tokens[0]:
            stepped.step += 1
            stepped.engine.step()
        started = stepped.step
        long = CompletionRequest("word " * 50, Sampling(max_tokens=4), logprobs=0)
        size = len(runtime.tokenize(long.prompt, True))
        assert size > 200
        stepped.submit(1, long)
        stepped.run()
        read = range(started + 1, stepped.tokens[1][0] + 1)  # the steps the long prompt took
        assert len(read) >= size // 16  # read in chunks beside the running stream's tokens
        steps = stepped.tokens[0]
        assert [steps.count(step) for step in read] == [1] * len(read)  # one token each step
        assert len(steps) == 200 and len(stepped.tokens[1]) == 4
    finally:
        runtime.unload()
