"""How a chat request becomes a generation on llama.cpp: the chat template it renders with
(the GGUF's `tool_use` one when it offers tools), tools offered through that template or in a
system message, the reasoning controls as template variables, the reply's grammar (a call, a
response format, or either, after the family's reasoning), a final assistant message
continued, and the reader of the reply in the model family's format (chat_reply.py). The
prompt itself is prompts.py's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import llama_cpp
from llama_cpp import Llama
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, InputError, TextDelta
from localoip.runtimes.llamacpp import generation, legacy, reasoning
from localoip.runtimes.llamacpp.chat_reply import ChatReply
from localoip.runtimes.llamacpp.formats import families
from localoip.runtimes.llamacpp.formats.format import SPACE, Format
from localoip.runtimes.llamacpp.formats.reader import ReplyReader
from localoip.runtimes.llamacpp.generation import Generation, sampling_arguments
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, compile_grammar, schema_grammar
from localoip.runtimes.llamacpp.prompts import ChatPrompt, template_source, tool_use_source
from localoip.runtimes.llamacpp.template_input import ChatInput
from localoip.runtimes.llamacpp.tool_offer import chosen


@dataclass(frozen=True, slots=True)
class ChatModel:
    """What a loaded model brings to its chats: its reply format (recognised from its
    template), whether its replies print special tokens (the format's markers are control
    tokens), the tokens that close its reasoning, and its defaults for the reasoning
    controls (LlamaCppOptions)."""

    format: Format
    special: bool = False
    close: tuple[int, ...] = ()
    effort: str | None = None
    budget: int | None = None


def chat_model(llm: Llama, prompt: ChatPrompt, effort: str | None, budget: int | None) -> ChatModel:
    """The ChatModel of a loaded model whose chats `prompt` renders."""
    fmt = families.recognise(prompt.source)
    vocab = llm._model.vocab
    special = False
    for marker in fmt.markers():
        tokens = llm.tokenize(marker.encode(), add_bos=False, special=True)
        attr = llama_cpp.llama_vocab_get_attr(vocab, tokens[0]) if len(tokens) == 1 else 0
        special = special or bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL)
    close = tuple(reasoning.close_tokens(llm, fmt))
    return ChatModel(fmt, special, close, effort, budget)


@dataclass(frozen=True, slots=True)
class ChatTemplates:
    """A loaded model's chat templates, each with what it brings to a chat: the default, and
    the GGUF's `tool_use` one (prompts.tool_use_source; None: none) that a chat offering tools
    renders with, its reply read in the format recognised from that template."""

    default: tuple[ChatPrompt, ChatModel]
    tool_use: tuple[ChatPrompt, ChatModel] | None = None

    def of(self, request: ChatRequest) -> tuple[ChatPrompt, ChatModel]:
        """The template a chat renders with, and its ChatModel."""
        if self.tool_use is not None and offers_tools(request):
            return self.tool_use
        return self.default

    def planned(self, llm: Llama, request: ChatRequest) -> tuple[ChatPrompt, ChatModel, ChatPlan]:
        """The template a chat renders with, what the model brings with it, and the plan."""
        prompt, model = self.of(request)
        sampling = sampling_arguments(llm, request.sampling)
        return prompt, model, chat_plan(request, model, prompt, sampling)


def chat_templates(
    llm: Llama, chat_format: str | None, effort: str | None, budget: int | None
) -> ChatTemplates:
    """The ChatTemplates of a loaded model, `chat_format` configured or not (see prompts.py);
    `effort` and `budget` are its reasoning defaults. ValueError for a template that does not
    compile, or a "chat_template.NAME" the GGUF does not hold."""

    def side(source: str | None) -> tuple[ChatPrompt, ChatModel]:
        prompt = ChatPrompt(llm, source)
        return prompt, chat_model(llm, prompt, effort, budget)

    tool_use = tool_use_source(llm.metadata, chat_format)
    return ChatTemplates(
        side(template_source(llm.metadata, chat_format)),
        side(tool_use) if tool_use is not None else None,
    )


def offers_tools(request: ChatRequest) -> bool:
    """Whether a chat offers the model tools (some, and a tool_choice other than "none")."""
    return bool(request.tools) and request.tool_choice != "none"


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """A chat request planned: what its prompt holds, the sampling arguments, the reply's
    format, the mode ("text", "auto": text or calls, "forced": calls), the template's
    variables, and the reasoning budget."""

    chat: ChatInput
    sampling: dict[str, Any]
    format: Format
    mode: str
    template_kwargs: dict[str, Any] | None = None
    budget: int | None = None


def chat_plan(
    request: ChatRequest, model: ChatModel, prompt: ChatPrompt, sampling: dict[str, Any]
) -> ChatPlan:
    """The plan of a chat. Tools go to the template when the family's template lists them
    and the probe found it renders them; otherwise they are offered in a system message in
    the Hermes form, and the reply is read as families.prompted says. InputError for a
    reasoning control out of range."""
    fmt = model.format
    mode = "text"
    if offers_tools(request):
        mode = "auto" if request.tool_choice == "auto" else "forced"
    in_template = fmt.template_tools and prompt.caps.tools
    if mode != "text" and not in_template:
        fmt = families.prompted(fmt)
    effort = reasoning.effort_of(request.reasoning_effort, model.effort)
    kwargs = reasoning.template_kwargs(prompt.source, effort, request.template_kwargs)
    messages = _history(request.messages, fmt, not request.continue_final)
    if reasoning.switched_off(prompt.source, effort, kwargs):
        messages = reasoning.no_think(messages)
    budget = request.max_reasoning_tokens
    if budget is None:
        budget = model.budget
    if budget is not None and budget < 0:
        raise InputError("max_reasoning_tokens must not be negative", "max_reasoning_tokens")
    offered = request.tools if mode != "text" else ()
    chat = ChatInput(messages, offered, in_template, mode == "forced")
    return ChatPlan(chat, sampling, fmt, mode, kwargs, budget)


def _history(messages: list[ChatMessage], fmt: Format, last_too: bool) -> list[ChatMessage]:
    """Assistant turns whose text still holds the format's reasoning (a raw reply sent back)
    with it moved to their reasoning, as templates take it (gpt-oss's refuses its channel
    markers in content); a turn being continued (not `last_too`) stays as it is."""
    r = fmt.reasoning
    if r is None:
        return messages
    out = list(messages)
    for i, m in enumerate(messages[: None if last_too else -1]):
        if m.role == "assistant" and m.content and r.open in m.content and m.reasoning is None:
            reader = ReplyReader(fmt)
            got = reader.feed(m.content)
            rest, _ = reader.end()
            reasoning = got.reasoning + rest.reasoning
            out[i] = replace(m, content=got.content + rest.content, reasoning=reasoning)
    return out


Grammar = llama_cpp.LlamaGrammar


def reply_grammars(
    request: ChatRequest, plan: ChatPlan, opened: bool
) -> tuple[Grammar | None, Grammar | None]:
    """The reply's grammar: a call, the response format, or (auto with a format) either,
    each after the reasoning the family writes (only its end when the prompt `opened` it);
    and the grammar of the rest of the reply once its reasoning is closed (a spent budget
    puts the close marker in), None for a format that does not reason."""
    schema, names, fmt = request.json_schema, request.names, plan.format
    builder = GrammarBuilder(names, request.tools)
    many = request.parallel_tool_calls is True  # a forced reply makes one call unless asked
    if plan.mode == "forced":
        body = fmt.calls_rule(builder, chosen(request.tools, request.tool_choice), many)
        param = "tools"
    elif schema is None:
        return None, None
    elif plan.mode == "text" and fmt.reasoning is None and fmt.answer == ("", ""):
        return schema_grammar(schema, names.json_schema), None
    else:
        value = builder.schema(schema or {"type": "object"}, "message", names.json_schema)
        body = fmt.answer_rule(builder, value)
        if plan.mode != "text":
            body = f"{fmt.calls_rule(builder, request.tools, many)} | {body}"
        param = names.json_schema
    whole = compile_grammar(builder.text(fmt.reply_rule(builder, body, opened)), param)
    if fmt.reasoning is None:
        return whole, None
    rest = builder.rule("after-reasoning", f"{SPACE} ({body})")
    return whole, compile_grammar(builder.text(rest), param)


def chat_arguments(prompt: ChatPrompt, request: ChatRequest, plan: ChatPlan) -> dict[str, Any]:
    """The completion arguments of a planned chat (without its grammar). To continue the
    final (assistant) message, the messages before it are rendered with the generation
    prompt and its text follows, so the model goes on from inside its own turn (vLLM's
    `continue_final_message`)."""
    if not request.continue_final:
        return prompt.arguments(plan.chat, plan.sampling, template_kwargs=plan.template_kwargs)
    *head, last = plan.chat.messages
    if last.role != "assistant" or not head:
        raise InputError(
            "continuing a reply needs an assistant message last, after another message",
            "messages",
        )
    if plan.mode != "text":
        raise InputError("a reply with tools cannot be continued", "tools")
    chat = replace(plan.chat, messages=head)
    return prompt.arguments(
        chat, plan.sampling, final=last.content or "", template_kwargs=plan.template_kwargs
    )


def chat_reply(
    request: ChatRequest,
    plan: ChatPlan,
    model: ChatModel,
    opened: bool,
    after: Grammar | None = None,
    forceable: bool = True,
) -> ChatReply:
    """The reader of a planned chat's reply; `after` is its grammar once its reasoning is
    closed (None: no grammar). Not `forceable` (llama-cpp-python's own path, where nothing
    can be put into the generation), it keeps no reasoning budget."""
    tools = request.tools if plan.mode != "text" else ()
    reader = ReplyReader(
        plan.format, tools, opened=opened, parallel=request.parallel_tool_calls is not False
    )
    budget = plan.budget if forceable else None
    return ChatReply(reader, budget, model.close, plan.mode != "forced", after)


def opens_reasoning(llm: Llama, fmt: Format, prompt: str | list[int]) -> bool:
    """Whether a prompt (text, or tokens) leaves the reply inside a reasoning block."""
    if fmt.reasoning is None:
        return False
    if not isinstance(prompt, str):  # its end is enough: the generation prompt's last tokens
        prompt = llm.detokenize(prompt[-64:], special=True).decode(errors="ignore")
    return fmt.opens_reasoning(prompt)


def chat_generation(
    llm: Llama, prompt: ChatPrompt, request: ChatRequest, plan: ChatPlan, model: ChatModel
) -> Generation:
    """The Generation of a planned chat, its reply read in the family's format."""
    args = chat_arguments(prompt, request, plan)
    opened = opens_reasoning(llm, plan.format, args["prompt"])
    grammar, after = reply_grammars(request, plan, opened)
    args = {**args, "grammar": grammar}
    # Call and reasoning markers may be control tokens ([TOOL_CALLS], [THINK]): print them.
    special = model.special or plan.mode != "text"
    gen = generation.plan(llm, args, "messages", request.logprobs, special=special)
    return replace(gen, reply=chat_reply(request, plan, model, opened, after))


def handler_chat(
    llm: Llama, prompt: ChatPrompt, request: ChatRequest, plan: ChatPlan, model: ChatModel
) -> Iterator[TextDelta]:
    """A planned chat's deltas from a chat handler that does more than render a prompt, on
    llama-cpp-python's own path (legacy.py), read in the family's format (no reasoning
    budget: nothing can be forced into that generation)."""
    grammar, _ = reply_grammars(request, plan, opened=False)
    kwargs = {**prompt.handler_kwargs(plan.chat), **plan.sampling, "grammar": grammar}
    reply = chat_reply(request, plan, model, False, forceable=False)
    generated = 0  # each of its deltas with text is one generated token
    for delta in legacy.chat_stream(llm, kwargs, request):
        generated += bool(delta.text)
        if (out := reply.read(delta, generated)) is not None:
            yield out
