"""How a chat request becomes a generation on llama.cpp: tools offered through the chat
template or in a system message, the reply's grammar (a call, a response format, or either),
a final assistant message continued, and tool calls read back out of the reply's deltas. The
prompt itself is prompts.py's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import llama_cpp
from llama_cpp import Llama
from localoip.runtimes.capabilities import ChatRequest, Emit, InputError, TextDelta
from localoip.runtimes.llamacpp import generation, tool_calls
from localoip.runtimes.llamacpp.generation import Generation
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, compile_grammar, schema_grammar
from localoip.runtimes.llamacpp.prompts import ChatPrompt
from localoip.runtimes.llamacpp.template_input import ChatInput


class CallDeltas:
    """Reads tool calls out of a reply's deltas as they stream (tool_choice auto or forced)."""

    def __init__(self, fam: tool_calls.Family, request: ChatRequest, mode: str) -> None:
        self._reader = tool_calls.CallReader(fam, request.tools, forced=mode == "forced")

    def read(self, delta: TextDelta) -> TextDelta | None:
        """The delta with its text split into text and call pieces; None if nothing is left."""
        text, pieces = self._reader.feed(delta.text)
        if delta.finish_reason is None:
            if text or pieces or delta.logprobs:
                return replace(delta, text=text, call_pieces=tuple(pieces))
            return None
        rest, more, calls = self._reader.end(cut=delta.finish_reason == "length")
        finish = "tool_calls" if calls and delta.finish_reason != "length" else delta.finish_reason
        return replace(
            delta,
            text=text + rest,
            finish_reason=finish,
            tool_calls=calls,
            call_pieces=(*pieces, *more),
        )

    def stream(self, deltas: Iterable[TextDelta]) -> Iterator[TextDelta]:
        """The deltas, read for calls (read() for each, what is left of it)."""
        for delta in deltas:
            out = self.read(delta)
            if out is not None:
                yield out

    def emitting(self, emit: Emit) -> Emit:
        """`emit`, hearing each delta read for calls (the end and errors as they are)."""

        def read_calls(item: TextDelta | BaseException | None) -> None:
            if not isinstance(item, TextDelta):
                emit(item)
            elif (out := self.read(item)) is not None:
                emit(out)

        return read_calls


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """A chat request planned: what its prompt holds, the generation's `kwargs` (sampling and
    the reply's grammar), the tool-call family that reads the reply, and the mode: "text",
    "auto" (text or calls) or "forced" (calls)."""

    chat: ChatInput
    kwargs: dict[str, Any]
    family: tool_calls.Family
    mode: str


def chat_plan(
    request: ChatRequest, family: tool_calls.Family, sampling: dict[str, Any], takes_tools: bool
) -> ChatPlan:
    """The plan of a chat for a model whose calls `family` reads and whose template lists
    tools (`takes_tools`). Tools go to the template when both hold; otherwise they are
    offered in a system message in the Hermes form, which reads the reply."""
    fam = family
    mode = "text"
    if request.tools and request.tool_choice != "none":
        mode = "auto" if request.tool_choice == "auto" else "forced"
    in_template = fam.template_tools and takes_tools
    if mode != "text" and not in_template:
        fam = tool_calls.HERMES
    offered = request.tools if mode != "text" else ()
    chat = ChatInput(request.messages, offered, in_template, mode == "forced")
    kwargs = dict(sampling)
    grammar = reply_grammar(request, fam, mode)
    if grammar is not None:
        kwargs["grammar"] = grammar
    return ChatPlan(chat, kwargs, fam, mode)


def reply_grammar(
    request: ChatRequest, fam: tool_calls.Family, mode: str
) -> llama_cpp.LlamaGrammar | None:
    """The reply's grammar: a call, the response format, or (auto with a format) either."""
    schema, names = request.json_schema, request.names
    builder = GrammarBuilder(names, request.tools)
    if mode == "forced":
        chosen = tool_calls.chosen(request.tools, request.tool_choice)
        return compile_grammar(builder.text(tool_calls.call_rule(builder, fam, chosen)), "tools")
    if schema is None:
        return None
    if mode == "text":
        return schema_grammar(schema, names.json_schema)
    call = tool_calls.call_rule(builder, fam, request.tools)
    message = builder.schema(schema or {"type": "object"}, "message", names.json_schema)
    return compile_grammar(builder.text(f"{call} | {message}"), names.json_schema)


def chat_arguments(prompt: ChatPrompt, request: ChatRequest, plan: ChatPlan) -> dict[str, Any]:
    """The completion arguments of a planned chat. To continue the final (assistant)
    message, the messages before it are rendered with the generation prompt and its text
    follows, so the model goes on from inside its own turn (vLLM's `continue_final_message`)."""
    if not request.continue_final:
        return prompt.arguments(plan.chat, plan.kwargs)
    *head, last = plan.chat.messages
    if last.role != "assistant" or not head:
        raise InputError(
            "continuing a reply needs an assistant message last, after another message",
            "messages",
        )
    if plan.mode != "text":
        raise InputError("a reply with tools cannot be continued", "tools")
    chat = replace(plan.chat, messages=head)
    return prompt.arguments(chat, plan.kwargs, final=last.content or "")


def chat_generation(
    llm: Llama, prompt: ChatPrompt, request: ChatRequest, plan: ChatPlan
) -> Generation:
    """The Generation of a planned chat."""
    args = chat_arguments(prompt, request, plan)
    # Call markers may be control tokens ([TOOL_CALLS], <|python_tag|>): keep their text.
    return generation.plan(llm, args, "messages", request.logprobs, special=plan.mode != "text")
