"""The context policy on the tiny GGUF (one token a byte, n_ctx 256): the fit rule, and what
each policy keeps of a prompt exactly at its limit, one token over and ten times over, on the
serial path and in the batching engine."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    InputError,
    Sampling,
    TextDelta,
    ToolCall,
    Truncated,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp import chats, context
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from support.tiny_models import build_tiny_gguf

N_CTX = 256
REPLY = 4  # max_tokens of every request here: a cut prompt leaves this much room
SYSTEM, LAST = "SYSTEM-KEEP", "LAST-QUESTION"


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gguf(tmp_path_factory.mktemp("context") / "tiny.gguf")


@pytest.fixture(scope="module")
def runtimes(gguf: Path) -> Iterator[dict[str, LlamaCppRuntime]]:
    """One serial runtime per policy, and a batching one that rolls its window."""
    loaded = {}
    for policy in context.POLICIES:
        opts = LlamaCppOptions(n_ctx=N_CTX, threads=1, parallel=1, context_overflow=policy)
        loaded[policy] = LlamaCppRuntime(str(gguf), opts)
    opts = LlamaCppOptions(n_ctx=N_CTX, threads=1, parallel=2, context_overflow="rolling_window")
    loaded["engine"] = LlamaCppRuntime(str(gguf), opts)
    for runtime in loaded.values():
        runtime.load()
    yield loaded
    for runtime in loaded.values():
        runtime.unload()


def conversation(pad: int, turns: int = 3, **extra: object) -> ChatRequest:
    """A system message, `turns` earlier exchanges (the first user message `pad` bytes
    longer) and the last user turn, greedy with REPLY tokens to reply."""
    messages = [ChatMessage("system", SYSTEM)]
    for i in range(turns):
        messages.append(ChatMessage("user", f"question {i} " + "q" * (pad if i == 0 else 5)))
        messages.append(ChatMessage("assistant", f"answer {i} " + "a" * 5))
    messages.append(ChatMessage("user", LAST))
    return ChatRequest(messages, Sampling(max_tokens=REPLY, temperature=0.0), **extra)


def sized(runtime: LlamaCppRuntime, tokens: int) -> ChatRequest:
    """A conversation of exactly `tokens` prompt tokens (the tiny vocabulary's one a byte),
    with as many earlier turns as fit in it, two at least."""
    turns = max(2, tokens // 100)
    base = len(runtime.tokenize_chat(conversation(0, turns)))
    assert tokens >= base
    request = conversation(tokens - base, turns)
    assert len(runtime.tokenize_chat(request)) == tokens
    return request


def read(runtime: LlamaCppRuntime, request: ChatRequest) -> tuple[str, int]:
    """The text of the prompt a chat's generation reads, and its length in tokens."""
    prompt, model, plan = runtime.templates.planned(runtime.llm, request)
    gen = chats.chat_generation(runtime.llm, prompt, request, plan, model)
    text = runtime.llm.detokenize(gen.prompt, special=True).decode(errors="replace")
    return text, len(gen.prompt)


LIMIT = N_CTX - REPLY  # the prompt limit of a policy that cuts, with max_tokens REPLY


def test_the_fit_rule():
    assert context.prompt_limit(N_CTX, None, "error") == N_CTX - 1  # as it has always been
    assert context.prompt_limit(N_CTX, 4000, "error") == N_CTX - 1
    assert context.prompt_limit(N_CTX, REPLY, "rolling_window") == LIMIT
    assert context.prompt_limit(N_CTX, None, "truncate_middle") == N_CTX - N_CTX // 4
    assert context.prompt_limit(8192, None, "rolling_window") == 8192 - context.REPLY_ROOM
    assert context.prompt_limit(N_CTX, 4000, "rolling_window") == N_CTX // 2  # half at most
    assert context.prompt_limit(N_CTX, 0, "truncate_middle") == N_CTX - 1


@pytest.mark.parametrize(
    ("overflow", "truncation", "policy"),
    [
        ("error", None, "error"),
        ("truncate_middle", None, "truncate_middle"),
        ("error", "auto", "rolling_window"),
        ("truncate_middle", "auto", "truncate_middle"),
        ("rolling_window", "disabled", "error"),
    ],
)
def test_a_requests_truncation_picks_the_policy(overflow, truncation, policy):
    assert context.policy_of(overflow, truncation) == policy


def test_an_unknown_truncation_is_an_input_error():
    with pytest.raises(InputError, match="'auto' or 'disabled'") as error:
        context.policy_of("error", "middle")
    assert error.value.param == "truncation"


def test_turns_keep_a_call_with_its_results_and_never_hold_system_or_the_last_user_turn():
    call = ToolCall("c1", "look", "{}")
    messages = [
        ChatMessage("system", "s"),
        ChatMessage("user", "u0"),
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "result", tool_call_id="c1"),
        ChatMessage("assistant", "a0"),
        ChatMessage("developer", "d"),
        ChatMessage("user", "u1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "last"),
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "result", tool_call_id="c1"),
    ]
    assert context.turns(messages) == [[1, 2, 3, 4], [6, 7]]
    kept = context.without_turns(messages, 1)
    assert [m.content for m in kept][:3] == ["s", "d", "u1"]


@pytest.mark.parametrize("policy", ["rolling_window", "truncate_middle"])
def test_a_chat_exactly_at_the_limit_is_read_whole(runtimes, policy):
    runtime = runtimes[policy]
    request = sized(runtime, LIMIT)
    result = runtime.chat(request)
    assert result.prompt_tokens == LIMIT and result.truncated is None


def test_under_error_a_chat_fits_while_it_leaves_one_position_and_then_is_the_same_400(runtimes):
    runtime = runtimes["error"]
    assert runtime.chat(sized(runtime, N_CTX - 1)).prompt_tokens == N_CTX - 1
    for over in (N_CTX, 10 * N_CTX):
        with pytest.raises(InputError) as error:
            runtime.chat(sized(runtime, over))
        assert str(error.value) == f"Requested tokens ({over}) exceed context window of {N_CTX}"
        assert (error.value.param, error.value.code) == ("messages", "context_length_exceeded")


@pytest.mark.parametrize("over", [1, 9 * N_CTX])
def test_a_rolling_window_drops_the_oldest_whole_turns(runtimes, over):
    runtime = runtimes["rolling_window"]
    request = sized(runtime, LIMIT + over)
    text, tokens = read(runtime, request)
    assert tokens <= LIMIT
    assert SYSTEM in text and LAST in text
    assert "question 0" not in text  # the oldest turn went first, whole
    earlier = sum(m.role == "user" for m in request.messages) - 1
    kept = [i for i in range(earlier) if f"question {i} " in text]
    assert kept == list(range(kept[0], earlier))  # the newest turns stay
    assert all(f"answer {i} " in text for i in kept)  # each with its answer
    result = runtime.chat(request)
    assert result.prompt_tokens == tokens  # usage counts what was read
    assert result.truncated == Truncated("rolling_window", LIMIT + over - tokens)


@pytest.mark.parametrize("over", [1, 9 * N_CTX])
def test_a_middle_cut_keeps_the_start_and_the_end(runtimes, over):
    runtime = runtimes["truncate_middle"]
    request = sized(runtime, LIMIT + over)
    text, tokens = read(runtime, request)
    assert tokens == LIMIT  # a middle cut fills the room exactly
    least = read(runtime, conversation(0, 0))[0]  # the system message and the last turn alone
    assert text.startswith(least[: least.index(SYSTEM) + len(SYSTEM)])
    assert text.endswith(least[least.index(LAST) :])
    result = runtime.chat(request)
    assert result.prompt_tokens == LIMIT
    assert result.truncated == Truncated("truncate_middle", over)


@pytest.mark.parametrize("policy", ["rolling_window", "truncate_middle"])
def test_a_system_message_and_last_turn_too_long_alone_is_a_clear_400(runtimes, policy):
    runtime = runtimes[policy]
    messages = [ChatMessage("system", "s" * 200), ChatMessage("user", "u" * 200)]
    request = ChatRequest(messages, Sampling(max_tokens=REPLY))
    with pytest.raises(InputError, match="prompt is too long: the system messages and the last"):
        runtime.chat(request)


def test_a_request_may_disable_the_models_policy_or_ask_for_one(runtimes):
    with pytest.raises(InputError, match="exceed context window"):
        runtimes["rolling_window"].chat(conversation(0, 20, truncation="disabled"))
    result = runtimes["error"].chat(conversation(0, 20, truncation="auto"))
    assert result.truncated is not None and result.truncated.policy == "rolling_window"


def engine_deltas(runtime: LlamaCppRuntime, request: ChatRequest | CompletionRequest) -> list:
    got: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
    submit = runtime.chat_batched if isinstance(request, ChatRequest) else runtime.complete_batched
    assert submit(request, got.put) is not None
    deltas = []
    while (item := got.get(timeout=60)) is not None:
        if isinstance(item, BaseException):
            raise item
        deltas.append(item)
    return deltas


def test_the_engine_cuts_as_the_serial_path_does_and_its_first_delta_says_so(runtimes):
    request = conversation(0, 20)
    deltas = engine_deltas(runtimes["engine"], request)
    serial = list(runtimes["rolling_window"].chat_stream(request))
    assert deltas[0].truncated is not None and serial[0].truncated == deltas[0].truncated
    assert gather(deltas).prompt_tokens == gather(serial).prompt_tokens <= LIMIT
    completion = CompletionRequest("word " * 100, Sampling(max_tokens=REPLY))
    batched = gather(engine_deltas(runtimes["engine"], completion))
    whole = len(runtimes["engine"].tokenize("word " * 100, True))
    assert batched.prompt_tokens == LIMIT
    assert batched.truncated == Truncated("rolling_window", whole - LIMIT)


@pytest.mark.parametrize("policy", ["rolling_window", "truncate_middle"])
def test_a_completion_keeps_its_tail_or_both_ends(runtimes, policy):
    runtime = runtimes[policy]
    prompt = "HEAD " + "x" * 1000 + " TAIL"
    result = runtime.complete(CompletionRequest(prompt, Sampling(max_tokens=REPLY), echo=True))
    assert result.prompt_tokens == LIMIT
    assert " TAIL" in result.text  # the echo: the prompt as read
    assert ("HEAD " in result.text) == (policy == "truncate_middle")
    framing = len(runtime.tokenize("y", True)) - 1  # a BOS, if the model asks for one
    exact = runtime.complete(CompletionRequest("y" * (LIMIT - framing), Sampling(max_tokens=REPLY)))
    assert exact.prompt_tokens == LIMIT and exact.truncated is None
    over = runtime.complete(
        CompletionRequest("y" * (LIMIT - framing + 1), Sampling(max_tokens=REPLY))
    )
    assert over.prompt_tokens == LIMIT and over.truncated == Truncated(policy, 1)


def test_a_context_llama_cpp_rounds_up_takes_the_prompts_it_reports_room_for(gguf):
    """n_ctx = 100 gives 256 cells in llama.cpp; a 200-token prompt used to fail in
    llama-cpp-python's 100-entry token array (a numpy broadcast error, a 500)."""
    runtime = LlamaCppRuntime(str(gguf), LlamaCppOptions(n_ctx=100, threads=1, parallel=1))
    runtime.load()
    try:
        assert runtime.max_model_len() == 256
        request = CompletionRequest("x" * 200, Sampling(max_tokens=3, temperature=0.0))
        result = gather(runtime.complete_stream(request))
        assert result.prompt_tokens >= 200 and result.completion_tokens == 3
    finally:
        runtime.unload()
