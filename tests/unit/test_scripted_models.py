"""Scripted tiny GGUFs (support/scripted.py) through our llama.cpp runtime: each family's
greedy reply is its script, read in the family's format (runtimes/llamacpp/formats) into
reasoning, answer and tool calls with their ids, streamed or not, batched or not, on one
thread or two; later turns reply their own scripts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, Sampling, TextResult, Tool
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from support.chats import WEATHER
from support.configs import SCRIPTED_OPTIONS
from support.engine import engine_deltas
from support.families import QWEN3, QWEN25
from support.family import ANSWER, ARGUMENTS, Family
from support.scripted import CASES, IDS, Turn, build_scripted_gguf, parts_of, printed

GREEDY = Sampling(temperature=0, max_tokens=400)
HI = ChatRequest([ChatMessage("user", "Hi there")], GREEDY)
FUNCTION = WEATHER["function"]
TOOLS = (Tool(FUNCTION["name"], FUNCTION["description"], FUNCTION["parameters"]),)


def script(family: Family, kind: str) -> str:
    return str(getattr(family, kind))


@pytest.fixture(scope="module")
def runtimes() -> Iterator[dict[tuple[str, int], LlamaCppRuntime]]:
    """Loaded runtimes by (file stem, threads), each loaded once for the module."""
    loaded: dict[tuple[str, int], LlamaCppRuntime] = {}
    yield loaded
    for runtime in loaded.values():
        runtime.unload()


def runtime_of(runtimes, folder: Path, stem: str, threads: int) -> LlamaCppRuntime:
    """The runtime of `folder/stem.gguf` on `threads`, loaded once for the module. Tool
    prompts of the byte-level vocabulary run to thousands of tokens: they are read 256 a go."""
    if (stem, threads) not in runtimes:
        options = LlamaCppOptions(
            n_ctx=8192,
            threads=threads,
            parallel=2,
            prompt_chunk=256,
            warmup=False,
            **SCRIPTED_OPTIONS,
        )
        runtime = LlamaCppRuntime(str(folder / f"{stem}.gguf"), options)
        runtime.load()
        runtimes[stem, threads] = runtime
    return runtimes[stem, threads]


def ask(kind: str, **fields) -> ChatRequest:
    """Hi, with get_weather offered to a model whose example reply calls it."""
    tools = TOOLS if kind == "calling" else ()
    return ChatRequest([ChatMessage("user", "Hi there")], GREEDY, tools=tools, **fields)


def parts(result: TextResult) -> tuple[str, str, list[tuple[str, dict]]]:
    calls = [(c.name, json.loads(c.arguments)) for c in result.tool_calls]
    return result.reasoning, result.text, calls


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_a_chat_comes_apart_into_reasoning_answer_and_calls(
    runtimes, scripted_dir, family, kind, threads
):
    runtime = runtime_of(runtimes, scripted_dir, f"{family.name}-{kind}", threads)
    reply = runtime.chat(ask(kind))
    assert parts(reply) == parts_of(family, kind)
    assert reply.finish_reason == ("tool_calls" if kind == "calling" else "stop")
    assert (reply.reasoning_tokens > 0) == bool(reply.reasoning)
    assert reply.reasoning_tokens < reply.completion_tokens
    for i, call in enumerate(reply.tool_calls):  # ids take the form the template insists on
        if family.name.startswith("mistral"):
            assert len(call.id) == 9 and call.id.isalnum()
        elif family.name == "kimi-k2":
            assert call.id == f"functions.get_weather:{i}"
        else:
            assert call.id.startswith("call_")


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_a_streamed_chat_adds_up_to_the_whole_one(runtimes, scripted_dir, family, kind):
    runtime = runtime_of(runtimes, scripted_dir, f"{family.name}-{kind}", 1)
    deltas = list(runtime.chat_stream(ask(kind)))
    streamed, whole = gather(deltas), runtime.chat(ask(kind))
    assert (parts(streamed), streamed.finish_reason) == (parts(whole), whole.finish_reason)
    assert streamed.reasoning_tokens == whole.reasoning_tokens
    pieces = [p for d in deltas for p in d.call_pieces]
    for i, call in enumerate(deltas[-1].tool_calls):
        mine = [p for p in pieces if p.index == i]
        assert (mine[0].id, mine[0].name) == (call.id, call.name)
        assert "".join(p.arguments for p in mine) == call.arguments


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_a_batched_chat_comes_apart_as_a_serial_one(runtimes, scripted_dir, family, kind, threads):
    runtime = runtime_of(runtimes, scripted_dir, f"{family.name}-{kind}", threads)
    reply = gather(engine_deltas(runtime, ask(kind)))
    assert parts(reply) == parts_of(family, kind)
    serial = runtime.chat(ask(kind))
    assert (reply.reasoning_tokens, reply.completion_tokens) == (
        serial.reasoning_tokens,
        serial.completion_tokens,
    )


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_the_reply_is_the_script_whatever_the_conversation(runtimes, scripted_dir, family, kind):
    runtime = runtime_of(runtimes, scripted_dir, f"{family.name}-{kind}", 1)
    long = ChatRequest(
        [
            ChatMessage("system", "You are terse."),
            ChatMessage("user", "What is the weather like in Paris today, in degrees?"),
        ],
        Sampling(temperature=0.8, seed=3, max_tokens=400),
        tools=TOOLS if kind == "calling" else (),
    )
    assert parts(runtime.chat(long)) == parts_of(family, kind)


@pytest.mark.parametrize(
    ("family", "first_piece"), [(QWEN3, None), (QWEN25, 1)], ids=["width", "merged-heads"]
)
def test_a_call_in_two_byte_pieces_is_the_script(tmp_path, family, first_piece):
    """Every attention head is HEAD_DIM wide however many the script needs: with fewer, wider
    heads, Qwen3's call in two-byte pieces would not load (its width was no multiple of its
    heads) and Qwen2.5's, cut one byte on, looped on `<tool_call>\\n` (a state head shared a
    head with a previous-token head)."""
    path = build_scripted_gguf(
        tmp_path / "pieces.gguf",
        family=family,
        script=script(family, "calling"),
        max_piece=2,
        first_piece=first_piece,
    )
    options = LlamaCppOptions(
        n_ctx=8192, threads=1, parallel=1, prompt_chunk=256, warmup=False, **SCRIPTED_OPTIONS
    )
    runtime = LlamaCppRuntime(str(path), options)
    runtime.load()
    try:
        assert parts(runtime.chat(ask("calling"))) == parts_of(family, "calling")
    finally:
        runtime.unload()


def llama_cpp_prints(llm: llama_cpp.Llama, text: str, special: bool) -> str:
    """What llama.cpp prints of `text`'s tokens, up to the first end-of-generation one."""
    out = b""
    for token in llm.tokenize(text.encode(), add_bos=False, special=True):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        out += llm._model.token_to_piece(token, special).rstrip(b"\0")
    return out.decode()


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_printed_knows_what_llama_cpp_prints(scripted_dir, family, kind):
    """printed() holds llama.cpp's rules: token types once loaded, and where output stops."""
    path = scripted_dir / f"{family.name}-{kind}.gguf"
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    text = script(family, kind)
    for special in (False, True):
        assert llama_cpp_prints(llm, text, special) == printed(family, text, special)


def tool_flow(folder: Path, family: Family, cue: str) -> LlamaCppRuntime:
    """A model that calls get_weather, then answers once the prompt holds `cue`."""
    path = build_scripted_gguf(
        folder / f"{family.name}-turns.gguf",
        family=family,
        script=[str(family.calling), Turn(ANSWER, cue=cue)],
    )
    runtime = LlamaCppRuntime(
        str(path), LlamaCppOptions(n_ctx=4096, threads=1, parallel=1, **SCRIPTED_OPTIONS)
    )
    runtime.load()
    return runtime


@pytest.mark.parametrize(
    ("family", "cue", "result"),
    [(QWEN25, "sunny", '{"weather": "sunny"}'), (QWEN3, "<tool_response>", '{"weather": "sun"}')],
    ids=["word", "special-token"],
)
def test_after_the_tool_result_the_model_answers(tmp_path, family, cue, result):
    runtime = tool_flow(tmp_path, family, cue)
    try:
        first = [ChatMessage("user", "Weather in Paris?")]
        (call,) = runtime.chat(ChatRequest(first, GREEDY, tools=TOOLS)).tool_calls
        assert (call.name, json.loads(call.arguments)) == ("get_weather", json.loads(ARGUMENTS))
        then = [
            *first,
            ChatMessage("assistant", None, tool_calls=(call,)),
            ChatMessage("tool", result, tool_call_id=call.id),
        ]
        assert runtime.chat(ChatRequest(then, GREEDY, tools=TOOLS)).text == ANSWER
    finally:
        runtime.unload()


def test_a_one_byte_text_after_a_turns_first_token_is_held(tmp_path):
    """Qwen3's prompt ends in "\\n", as this script's third token is: the previous token
    tells them apart."""
    text = "<think>\n</think>\n\nHello!"
    path = build_scripted_gguf(tmp_path / "empty-think.gguf", family=QWEN3, script=text)
    runtime = LlamaCppRuntime(
        str(path), LlamaCppOptions(n_ctx=4096, threads=1, parallel=1, **SCRIPTED_OPTIONS)
    )
    runtime.load()
    try:
        assert parts(runtime.chat(HI)) == ("", "Hello!", [])
    finally:
        runtime.unload()


@pytest.mark.parametrize(
    ("turns", "error"),
    [
        (["\n<think>Hi</think>"], "one-byte text"),
        (["Hi", Turn("Bye", cue="not a word")], "an ASCII word"),
        (["Hi", "Bye"], "every later one has one"),
        (["Hi<|im_end|>more"], "can only end a reply"),
        (["sunny", Turn("Bye", cue="sunny")], "cues are prompt-only"),
        (["Hello<think><think><think>Bye"], "same state"),
    ],
)
def test_a_script_the_network_cannot_hold_is_refused(tmp_path, turns, error):
    with pytest.raises(ValueError, match=error):
        build_scripted_gguf(tmp_path / "bad.gguf", family=QWEN3, script=turns)
