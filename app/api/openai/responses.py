"""The Responses API <-> runtime requests and results: input items, response objects, events.

Pure functions and one state machine (OutputBuilder); no HTTP, no storage.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from localoip.app.api.openai.sealer import Sealer
from localoip.app.core.errors import InvalidInput, Problem
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire import responses_requests as rt

TEXT_PARTS = ("input_text", "output_text")
TERMINAL = ("completed", "incomplete", "failed", "cancelled")
SUMMARY_PREFIX = "Summary of the conversation so far:\n"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- input ----------------------------------------------------------------------------------


def refuse_unsupported(req: rt.ResponseInput) -> None:
    for name in ("conversation", "prompt"):
        if getattr(req, name) is not None:
            raise InvalidInput(f"{name} is not supported by this server", name)


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{key} is required and must be a string", f"{where}.{key}")
    return value


def _texts(content: Any, where: str) -> list[str]:
    """The texts of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list) or not content:
        raise InvalidInput(
            f"{where}.content must be a string or a non-empty list of text parts",
            f"{where}.content",
        )
    texts = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidInput(
                f"content part type {kind!r} is not supported; send input_text or "
                "output_text parts",
                f"{at}.type",
            )
        texts.append(_string(part, "text", at))
    return texts


def user_message(text: str) -> dict[str, Any]:
    return message_item(new_id("msg"), "user", [text])


def message_item(
    iid: str, role: str, texts: list[str], status: str = "completed"
) -> dict[str, Any]:
    """A stored message item: input_text parts, or output_text parts for the assistant."""
    if role == "assistant":
        parts = [output_text(t) for t in texts]
    else:
        parts = [{"type": "input_text", "text": t} for t in texts]
    return {"id": iid, "type": "message", "role": role, "status": status, "content": parts}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _item(raw: dict[str, Any], where: str, calls: set[str], sealer: Sealer) -> dict[str, Any]:
    kind = raw.get("type", "message")
    given = raw.get("id")
    if kind == "compaction":
        token = _string(raw, "encrypted_content", where)
        sealer.open(token, f"{where}.encrypted_content")  # refuse a forged one here, by name
        iid = given if isinstance(given, str) else new_id("cmp")
        return {"id": iid, "type": "compaction", "encrypted_content": token}
    if kind == "compaction_trigger":
        return {"id": given if isinstance(given, str) else new_id("ctr"), "type": kind}
    if kind == "message":
        role = raw.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise InvalidInput(
                f"{where}.role must be user, system, developer or assistant, not {role!r}",
                f"{where}.role",
            )
        iid = given if isinstance(given, str) else new_id("msg")
        return message_item(iid, role, _texts(raw.get("content"), where))
    if kind == "function_call":
        return {
            "id": given if isinstance(given, str) else new_id("fc"),
            "type": "function_call",
            "call_id": _string(raw, "call_id", where),
            "name": _string(raw, "name", where),
            "arguments": _string(raw, "arguments", where),
            "status": "completed",
        }
    if kind == "function_call_output":
        call_id = _string(raw, "call_id", where)
        if call_id not in calls:
            raise InvalidInput(
                f"no function_call with call_id {call_id!r} comes before this output",
                f"{where}.call_id",
            )
        output = raw.get("output")
        text = output if isinstance(output, str) else "".join(_texts(output, f"{where}.output"))
        return {
            "id": given if isinstance(given, str) else new_id("fco"),
            "type": "function_call_output",
            "call_id": call_id,
            "output": text,
            "status": "completed",
        }
    raise InvalidInput(
        f"input item type {kind!r} is not supported; send message, function_call, "
        "function_call_output, compaction or compaction_trigger items",
        f"{where}.type",
    )


def input_items(
    value: str | list[dict[str, Any]] | None, context: list[Any], sealer: Sealer
) -> list[Any]:
    """The request's input as stored items; `context` is what comes before it (a previous
    response's input and output), where a function_call_output finds its call."""
    if isinstance(value, str):
        return [user_message(value)]
    if not value:
        raise InvalidInput("input is required: a string or a non-empty list of items", "input")
    calls = {item["call_id"] for item in context if item["type"] == "function_call"}
    items = []
    for i, raw in enumerate(value):
        item = _item(raw, f"input[{i}]", calls, sealer)
        if item["type"] == "function_call":
            calls.add(item["call_id"])
        if item["type"] == "compaction_trigger" and i != len(value) - 1:
            raise InvalidInput(
                "a compaction_trigger item must be the last input item", f"input[{i}].type"
            )
        items.append(item)
    return items


def compacts(items: list[Any]) -> bool:
    """Whether the input ends with a compaction_trigger: the response is then a compaction."""
    return bool(items) and items[-1]["type"] == "compaction_trigger"


def since_compaction(items: list[Any]) -> list[Any]:
    """What the model sees of `items`: the last compaction item stands for everything before
    it but the user's own messages, which OpenAI's compaction keeps word for word."""
    last = max((i for i, item in enumerate(items) if item["type"] == "compaction"), default=-1)
    if last < 0:
        return items
    kept = [item for item in items[:last] if item["type"] == "message" and item["role"] == "user"]
    return kept + items[last:]


def chat_messages(
    instructions: str | None, items: list[Any], sealer: Sealer
) -> list[base.ChatMessage]:
    """Items as chat messages: calls join the assistant turn, outputs become tool messages,
    and a compaction reads as the assistant's summary of what it replaced."""
    messages = [base.ChatMessage("system", instructions)] if instructions else []
    for item in since_compaction(items):
        if item["type"] == "compaction_trigger":
            continue
        if item["type"] == "compaction":
            # Input items were opened when they were read; a stored one fails here only if
            # the key has changed since.
            summary = sealer.open(item["encrypted_content"], "previous_response_id")
            messages.append(base.ChatMessage("assistant", SUMMARY_PREFIX + summary))
        elif item["type"] == "message":
            text = "".join(part["text"] for part in item["content"])
            messages.append(base.ChatMessage(item["role"], text))
        elif item["type"] == "function_call":
            call = base.ToolCall(item["call_id"], item["name"], item["arguments"])
            if messages and messages[-1].role == "assistant":
                last = messages[-1]
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(base.ChatMessage("assistant", None, tool_calls=(call,)))
        else:
            messages.append(base.ChatMessage("tool", item["output"], tool_call_id=item["call_id"]))
    return messages


def tools(req: rt.ResponseInput) -> tuple[base.Tool, ...]:
    found = []
    for i, tool in enumerate(req.tools or ()):
        if tool.type != "function":
            raise InvalidInput(
                f"tool type {tool.type!r} is not supported; send function tools",
                f"tools[{i}].type",
            )
        if not tool.name:
            raise InvalidInput("a function tool needs a name", f"tools[{i}].name")
        found.append(base.Tool(tool.name, tool.description or "", tool.parameters))
    return tuple(found)


def tool_choice(req: rt.ResponseInput, offered: tuple[base.Tool, ...]) -> str:
    choice = req.tool_choice
    if isinstance(choice, rt.NamedToolChoice):
        if choice.type != "function" or not choice.name:
            raise InvalidInput(
                "tool_choice must be auto, none, required or {type: function, name}",
                "tool_choice",
            )
        if choice.name not in {t.name for t in offered}:
            raise InvalidInput(
                f"tool_choice names {choice.name!r}, which is not in tools", "tool_choice"
            )
        return choice.name
    if choice == "required" and not offered:
        raise InvalidInput("tool_choice 'required' needs at least one tool", "tool_choice")
    return choice or "auto"


def json_schema(req: rt.ResponseInput) -> dict[str, Any] | None:
    """The schema text.format asks for: None for text, {} for any JSON object."""
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {}
    if not fmt.name:
        raise InvalidInput("text.format type 'json_schema' needs a name", "text.format.name")
    if fmt.schema is None:
        raise InvalidInput("text.format type 'json_schema' needs a schema", "text.format.schema")
    return fmt.schema


def chat_request(req: rt.ResponseInput, items: list[Any], sealer: Sealer) -> base.ChatRequest:
    """The chat the model runs for a response whose whole input is `items`."""
    offered = tools(req)
    sampling = base.Sampling()
    if isinstance(req, rt.CreateResponse):
        sampling = base.Sampling(
            max_tokens=req.max_output_tokens, temperature=req.temperature, top_p=req.top_p
        )
    return base.ChatRequest(
        messages=chat_messages(req.instructions, items, sealer),
        sampling=sampling,
        tools=offered,
        tool_choice=tool_choice(req, offered),
        json_schema=json_schema(req),
    )


def context_of(previous: dict[str, Any], items: list[Any]) -> list[Any]:
    """What a response continuing `previous` starts from: its input items, then its output."""
    if previous["status"] not in TERMINAL:
        raise InvalidInput(
            f"response {previous['id']!r} has not finished (status {previous['status']})",
            "previous_response_id",
        )
    return [*items, *previous["output"]]


# -- the response object --------------------------------------------------------------------


def usage(input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _text_config(req: rt.CreateResponse) -> dict[str, Any]:
    fmt = req.text.format if req.text else None
    if fmt is None:
        return {"format": {"type": "text"}}
    if fmt.type != "json_schema":
        return {"format": {"type": fmt.type}}
    return {
        "format": {
            "type": "json_schema",
            "name": fmt.name,
            "schema": fmt.schema,
            "strict": fmt.strict,
            # OpenAI's schema lets a description be absent, but not null.
            **({"description": fmt.description} if fmt.description is not None else {}),
        }
    }


def new_response(req: rt.CreateResponse, model: str, status: str) -> dict[str, Any]:
    """A response as it starts: the request's settings, no output yet."""
    choice = req.tool_choice
    if isinstance(choice, rt.NamedToolChoice):
        choice = {"type": "function", "name": choice.name}
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": bool(req.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "metadata": req.metadata or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "store": req.store is not False,
        "temperature": req.temperature,
        "text": _text_config(req),
        "tool_choice": choice or "auto",
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": t.strict,
            }
            for t in req.tools or ()
        ],
        "top_p": req.top_p,
        "truncation": "disabled",
        # The schema lets `usage` and `user` be absent, but not null: usage comes once the
        # response has finished, and user only when given.
        **({"user": req.user} if req.user is not None else {}),
    }


class ItemBuilder(Protocol):
    """Builds a response's output items from a generation's deltas, with their events:
    OutputBuilder for messages and calls, compaction.SummaryBuilder for a compaction."""

    output: list[dict[str, Any]]
    usage: tuple[int, int]

    @property
    def status(self) -> str: ...

    def add(self, delta: base.TextDelta) -> list[dict[str, Any]]: ...

    def add_result(self, result: base.TextResult) -> list[dict[str, Any]]: ...

    def finish(self, cancelled: bool = False) -> list[dict[str, Any]]: ...


def finished(response: dict[str, Any], out: ItemBuilder, cancelled: bool = False) -> dict:
    """The response once its generation has ended, or was cancelled."""
    status = "cancelled" if cancelled else out.status
    return response | {
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "output": list(out.output),
        "usage": usage(*out.usage),
    }


def failed(response: dict[str, Any], problem: Problem, out: ItemBuilder) -> dict[str, Any]:
    """The response when its generation raised: the error, and whatever output came first."""
    code = {429: "rate_limit_exceeded"}.get(problem.status) or (
        "server_error" if problem.status >= 500 else "invalid_prompt"
    )
    error = {"code": code, "message": problem.message, "param": problem.param, "type": problem.type}
    return response | {"status": "failed", "error": error, "output": list(out.output)}


# -- output and stream events ---------------------------------------------------------------


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A stream event; the run numbers it (`sequence_number`) when it is sent."""
    return {"type": kind, **fields}


def lifecycle(kind: str, response: dict[str, Any]) -> dict[str, Any]:
    return event(f"response.{kind}", response=response)


def _text_event(kind: str, iid: str, index: int, **fields: Any) -> dict[str, Any]:
    return event(kind, item_id=iid, output_index=index, content_index=0, **fields)


def message_opened(iid: str, index: int) -> list[dict[str, Any]]:
    item = message_item(iid, "assistant", [], "in_progress")
    return [
        event("response.output_item.added", output_index=index, item=item),
        _text_event("response.content_part.added", iid, index, part=output_text("")),
    ]


def text_delta(iid: str, index: int, text: str) -> dict[str, Any]:
    return _text_event("response.output_text.delta", iid, index, delta=text, logprobs=[])


def message_closed(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    iid, text = item["id"], item["content"][0]["text"]
    return [
        _text_event("response.output_text.done", iid, index, text=text, logprobs=[]),
        _text_event("response.content_part.done", iid, index, part=output_text(text)),
        event("response.output_item.done", output_index=index, item=item),
    ]


def call_opened(item: dict[str, Any], index: int) -> dict[str, Any]:
    """A function_call item as it starts: no arguments yet."""
    opened = item | {"arguments": "", "status": "in_progress"}
    return event("response.output_item.added", output_index=index, item=opened)


def arguments_delta(iid: str, index: int, text: str) -> dict[str, Any]:
    return event(
        "response.function_call_arguments.delta", item_id=iid, output_index=index, delta=text
    )


def call_closed(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    done = event(
        "response.function_call_arguments.done",
        item_id=item["id"],
        output_index=index,
        name=item["name"],
        arguments=item["arguments"],
    )
    return [done, event("response.output_item.done", output_index=index, item=item)]


def call_events(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """A whole function call's events, its arguments in one delta."""
    return [
        call_opened(item, index),
        arguments_delta(item["id"], index, item["arguments"]),
        *call_closed(item, index),
    ]


def compaction_opened(iid: str, index: int) -> dict[str, Any]:
    item = {"id": iid, "type": "compaction", "encrypted_content": ""}
    return event("response.output_item.added", output_index=index, item=item)


def compacting(iid: str, index: int) -> dict[str, Any]:
    """The summary grows; as in OpenAI, the event carries none of it."""
    return event("response.compaction.compacting", item_id=iid, output_index=index)


def compaction_events(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """A whole compaction item's events."""
    return [
        compaction_opened(item["id"], index),
        compacting(item["id"], index),
        event("response.output_item.done", output_index=index, item=item),
    ]


def replay(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a response that has finished, for a stream asked for afterwards."""
    start = {k: v for k, v in response.items() if k != "usage"}
    start |= {"status": "in_progress", "output": []}
    events = [lifecycle("created", start), lifecycle("in_progress", start)]
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events += message_opened(item["id"], index)
            events += [text_delta(item["id"], index, text)] if text else []
            events += message_closed(item, index)
        elif item["type"] == "compaction":
            events += compaction_events(item, index)
        else:
            events += call_events(item, index)
    status = response["status"]
    last = status if status in ("completed", "failed") else "incomplete"
    events.append(lifecycle(last, response))
    for number, e in enumerate(events):
        e["sequence_number"] = number
    return events


@dataclass
class _OpenMessage:
    id: str
    index: int
    text: list[str] = field(default_factory=list)


@dataclass
class _OpenCall:
    item: dict[str, Any]  # the function_call item, arguments empty
    index: int
    arguments: list[str] = field(default_factory=list)


class OutputBuilder:
    """Turns a generation's deltas into output items, and the events that build them.

    Text goes into one assistant message, opened at the first text; each tool call becomes
    a function_call item after it. A call the runtime streams (`call_pieces`) opens at its
    first piece and gets its arguments as they come, as OpenAI streams them; one that comes
    only whole, on the last delta, is sent whole. A generation with neither still gives an
    empty message.
    """

    def __init__(self) -> None:
        self.output: list[dict[str, Any]] = []
        self.usage: tuple[int, int, int] = (0, 0, 0)  # input, output, cached input tokens
        self.finish_reason: str | None = None
        self._message: _OpenMessage | None = None
        self._call: _OpenCall | None = None
        self._streamed = 0  # calls opened from pieces so far

    @property
    def status(self) -> str:
        return "incomplete" if self.finish_reason == "length" else "completed"

    def add(self, delta: base.TextDelta) -> list[dict[str, Any]]:
        events = []
        if delta.text:
            # Text after a streamed call means the call never completed: the reply was text.
            events += self._close_call("incomplete")
            if self._message is None:
                events += self._open()
            message = self._message
            message.text.append(delta.text)
            events.append(text_delta(message.id, message.index, delta.text))
        for piece in delta.call_pieces:
            events += self._piece(piece)
        if delta.finish_reason:
            events += self._calls(delta.tool_calls)
        if delta.usage is not None:
            self.usage = (*delta.usage, delta.cached_tokens)
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        return events

    def add_result(self, result: base.TextResult) -> list[dict[str, Any]]:
        usage = (result.prompt_tokens, result.completion_tokens)
        delta = base.TextDelta(
            result.text,
            result.finish_reason,
            result.tool_calls,
            usage=usage,
            cached_tokens=result.cached_tokens,
        )
        return self.add(delta)

    def finish(self, cancelled: bool = False) -> list[dict[str, Any]]:
        """Close what is open; a generation that gave nothing gets its empty message."""
        events = self._close_call("incomplete") if cancelled else []
        if self._message is None and not self.output and not cancelled:
            events += self._open()
        return events + self._close("incomplete" if cancelled else self.status)

    def _open(self) -> list[dict[str, Any]]:
        self._message = _OpenMessage(new_id("msg"), len(self.output))
        return message_opened(self._message.id, self._message.index)

    def _close(self, status: str) -> list[dict[str, Any]]:
        message = self._message
        if message is None:
            return []
        item = message_item(message.id, "assistant", ["".join(message.text)], status)
        self.output.append(item)
        self._message = None
        return message_closed(item, message.index)

    def _piece(self, piece: base.ToolCallPiece) -> list[dict[str, Any]]:
        """A streamed piece: a new call's id and name (the call before it has ended), or more
        of the open call's arguments."""
        events = []
        if piece.id:
            events += self._close("completed") + self._close_call("completed")
            item = _call_item(base.ToolCall(piece.id, piece.name, ""))
            self._call = _OpenCall(item, len(self.output))
            self._streamed += 1
            events.append(call_opened(item, self._call.index))
        call = self._call
        if piece.arguments and call is not None:
            call.arguments.append(piece.arguments)
            events.append(arguments_delta(call.item["id"], call.index, piece.arguments))
        return events

    def _close_call(self, status: str) -> list[dict[str, Any]]:
        call = self._call
        if call is None:
            return []
        self._call = None
        item = call.item | {"arguments": "".join(call.arguments), "status": status}
        self.output.append(item)
        return call_closed(item, call.index)

    def _calls(self, calls: tuple[base.ToolCall, ...]) -> list[dict[str, Any]]:
        """The generation has ended with `calls`: the streamed ones close, the rest come whole.
        A streamed call that is not among them was cut off before it could be read."""
        events = []
        if self._call is not None:
            ended = self._streamed <= len(calls)
            events += self._close_call("completed" if ended else "incomplete")
        for call in calls[self._streamed :]:
            events += self._close("completed")
            item = _call_item(call)
            self.output.append(item)
            events += call_events(item, len(self.output) - 1)
        return events


def _call_item(call: base.ToolCall) -> dict[str, Any]:
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }
