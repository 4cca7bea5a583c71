"""How a chat request becomes a generation on llama.cpp: tools offered through the chat
template or in a system message, the reply's grammar (a call, a response format, or either),
a final assistant message continued, and tool calls read back out of the reply's deltas."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import jinja2
import llama_cpp
from llama_cpp import Llama
from localoip.runtimes.capabilities import ChatRequest, Emit, InputError, TextDelta
from localoip.runtimes.llamacpp import tool_calls
from localoip.runtimes.llamacpp.generation import Generation, completion_arguments, plan
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, compile_grammar, schema_grammar


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


def renders_prompts(llm: Llama) -> bool:
    """Whether the model's chat handler only renders a prompt, so our own generation paths can
    run its chats (else llama-cpp-python's own path must: legacy.py)."""
    try:
        completion_arguments(llm, True, {"messages": [{"role": "user", "content": "Hi"}]})
    except Exception:
        return False
    return True


def chat_plan(
    request: ChatRequest, family: tool_calls.Family, sampling: dict[str, Any]
) -> tuple[dict[str, Any], tool_calls.Family, str]:
    """create_chat_completion arguments (with the `sampling` ones), the tool-call family that
    reads the reply (the model's `family`, or Hermes when its template cannot offer tools),
    and the mode: "text", "auto" (text or calls) or "forced" (calls)."""
    fam = family
    mode = "text"
    if request.tools and request.tool_choice != "none":
        mode = "auto" if request.tool_choice == "auto" else "forced"
    elif not fam.template_tools:
        fam = tool_calls.HERMES
    messages = tool_calls.template_messages(fam, request.messages)
    kwargs: dict[str, Any] = {"messages": messages, **sampling}
    if mode != "text" and fam.template_tools:
        kwargs["tools"] = tool_calls.template_tools(request.tools)
    elif mode != "text":
        fam = tool_calls.HERMES
        offer = {
            "role": "system",
            "content": tool_calls.tools_prompt(request.tools, mode == "forced"),
        }
        if messages and messages[0]["role"] == "system":
            offer["content"] = f"{messages[0]['content']}\n\n{offer['content']}"
            messages = messages[1:]
        kwargs["messages"] = [offer, *messages]
    kwargs["grammar"] = reply_grammar(request, fam, mode)
    if kwargs["grammar"] is None:
        del kwargs["grammar"]
    return kwargs, fam, mode


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


def arguments(llm: Llama, chat: bool, kwargs: dict[str, Any], param: str) -> dict[str, Any]:
    """What llama-cpp-python would generate with; a template that refuses is a 400 (InputError
    on `param`)."""
    try:
        return completion_arguments(llm, chat, kwargs)
    except (ValueError, TypeError, jinja2.TemplateError) as exc:
        raise InputError(f"the chat format cannot render these messages: {exc}", param) from None


def chat_arguments(
    llm: Llama, request: ChatRequest, kwargs: dict[str, Any], mode: str
) -> dict[str, Any]:
    """The completion arguments of a chat. To continue the final (assistant) message, the
    messages before it are rendered with the generation prompt and its text follows, so
    the model goes on from inside its own turn (vLLM's `continue_final_message`)."""
    if not request.continue_final:
        return arguments(llm, True, kwargs, "messages")
    *head, last = kwargs["messages"]
    if last["role"] != "assistant" or not head:
        raise InputError(
            "continuing a reply needs an assistant message last, after another message",
            "messages",
        )
    if mode != "text":
        raise InputError("a reply with tools cannot be continued", "tools")
    args = arguments(llm, True, {**kwargs, "messages": head}, "messages")
    prompt, text = args["prompt"], last["content"] or ""
    if isinstance(prompt, str):
        return {**args, "prompt": prompt + text}
    # The chat handler gave tokens: the reply so far follows as plain text's tokens.
    return {**args, "prompt": [*prompt, *llm.tokenize(text.encode(), add_bos=False)]}


def chat_generation(
    llm: Llama, request: ChatRequest, kwargs: dict[str, Any], mode: str
) -> Generation:
    """The Generation of a planned chat (chat_plan's kwargs and mode)."""
    args = chat_arguments(llm, request, kwargs, mode)
    # Call markers may be control tokens ([TOOL_CALLS], <|python_tag|>): keep their text.
    return plan(llm, args, "messages", request.logprobs, special=mode != "text")
