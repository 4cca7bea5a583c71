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
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    InputError,
    TextDelta,
    Truncated,
)
from localoip.runtimes.llamacpp import context, generation, legacy, reasoning
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
    controls and its `context_overflow` policy (LlamaCppOptions)."""

    format: Format
    special: bool = False
    close: tuple[int, ...] = ()
    effort: str | None = None
    budget: int | None = None
    overflow: str = "error"


def chat_model(
    llm: Llama, prompt: ChatPrompt, effort: str | None, budget: int | None, overflow: str
) -> ChatModel:
    """The ChatModel of a loaded model whose chats `prompt` renders."""
    fmt = families.recognise(prompt.source)
    vocab = llm._model.vocab
    special = False
    for marker in fmt.markers():
        tokens = llm.tokenize(marker.encode(), add_bos=False, special=True)
        attr = llama_cpp.llama_vocab_get_attr(vocab, tokens[0]) if len(tokens) == 1 else 0
        special = special or bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL)
    close = tuple(reasoning.close_tokens(llm, fmt))
    return ChatModel(fmt, special, close, effort, budget, overflow)


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
    llm: Llama,
    chat_format: str | None,
    effort: str | None,
    budget: int | None,
    overflow: str = "error",
) -> ChatTemplates:
    """The ChatTemplates of a loaded model, `chat_format` configured or not (see prompts.py);
    `effort` and `budget` are its reasoning defaults, `overflow` its context policy.
    ValueError for a template that does not compile, or a "chat_template.NAME" the GGUF does
    not hold."""

    def side(source: str | None) -> tuple[ChatPrompt, ChatModel]:
        prompt = ChatPrompt(llm, source)
        return prompt, chat_model(llm, prompt, effort, budget, overflow)

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
    """The Generation of a planned chat, its reply read in the family's format, a prompt
    longer than the context cut by the model's policy and the request's `truncation`."""
    args = chat_arguments(prompt, request, plan)
    policy = context.policy_of(model.overflow, request.truncation)
    limit = context.prompt_limit(llm.n_ctx(), args["max_tokens"], policy)
    args, truncated = _fitted(llm, prompt, request, plan, args, policy, limit)
    opened = opens_reasoning(llm, plan.format, args["prompt"])
    grammar, after = reply_grammars(request, plan, opened)
    args = {**args, "grammar": grammar}
    # Call and reasoning markers may be control tokens ([TOOL_CALLS], [THINK]): print them.
    special = model.special or plan.mode != "text"
    gen = generation.plan(llm, args, "messages", request.logprobs, special=special, limit=limit)
    reply = chat_reply(request, plan, model, opened, after)
    return replace(gen, reply=reply, truncated=truncated)


def with_messages(plan: ChatPlan, messages: list[ChatMessage]) -> ChatPlan:
    """The plan of the same chat with only `messages` (some turns dropped)."""
    return replace(plan, chat=replace(plan.chat, messages=messages))


def _fitted(
    llm: Llama,
    prompt: ChatPrompt,
    request: ChatRequest,
    plan: ChatPlan,
    args: dict[str, Any],
    policy: str,
    limit: int,
) -> tuple[dict[str, Any], Truncated | None]:
    """The chat's arguments with a prompt of at most `limit` tokens, cut by `policy`
    (context.py), and what was cut; as they are when they fit or the policy is `error`.
    InputError when the system messages and the last turn alone exceed the limit."""
    full = generation.prompt_tokens(llm, args["prompt"])
    if len(full) <= limit or policy == "error":
        return args, None
    messages = plan.chat.messages

    def tokens_of(kept: list[ChatMessage]) -> list[int]:
        kept_args = chat_arguments(prompt, request, with_messages(plan, kept))
        return generation.prompt_tokens(llm, kept_args["prompt"])

    least = context.without_turns(messages, len(context.turns(messages)))
    if policy == "rolling_window":
        k = context.fewest_turns(messages, lambda kept: len(tokens_of(kept)), limit)
        if k >= 0:
            args = chat_arguments(
                prompt, request, with_messages(plan, context.without_turns(messages, k))
            )
            cut = generation.prompt_tokens(llm, args["prompt"])
            return args, Truncated(policy, len(full) - len(cut))
    else:
        ends = context.kept_whole(full, tokens_of(least))
        middle = context.middle_cut(full, ends, limit)
        if middle is not None:
            return {**args, "prompt": middle}, Truncated(policy, len(full) - len(middle))
    raise context.cannot_fit(
        len(tokens_of(least)),
        limit,
        llm.n_ctx(),
        "the system messages and the last turn",
        "messages",
    )


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
