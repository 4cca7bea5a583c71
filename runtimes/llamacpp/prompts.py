"""A model's chat prompts: the one place a chat becomes the text and tokens a model reads.

A model renders its chats with its own Jinja template (template.py): the GGUF's, the one
named by a `chat_format` of "chat_template.NAME", or a shipped one for a GGUF that has none.
A GGUF may hold named templates beside its default (Command R7B's `tool_use` and `rag`): as
llama-server does, a chat that offers tools renders with the `tool_use` one when the GGUF has
it and no `chat_format` is configured (tool_use_source).
A `chat_format` naming one of llama-cpp-python's own formats is rendered by that format's
handler instead (through generation.completion_arguments); a handler that does more than
render a prompt (function calling, vision) runs on llama-cpp-python's own path (legacy.py),
which sees the messages as sent.

Nothing is ever left out of a prompt: what the template does not take is folded into what it
does (template_input.py, from the template's probed template_caps.Caps), and every request is
rendered a second time with a needle for each message, call and tool: one that the template
still leaves out is a 400 naming it, as is a template that refuses the messages (its own
`raise_exception` text, with the message that made it refuse).

The prompt text becomes tokens as llama-server makes them: special tokens read as such, and
the model's BOS put first when its GGUF asks for one, unless the template wrote it already.
This module renders and tokenizes only; reading a reply (tool calls, reasoning) is another's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from llama_cpp import Llama
from localoip.runtimes.capabilities import InputError
from localoip.runtimes.llamacpp.generation import (
    arguments,
    chat_defaults,
    completion_arguments,
)
from localoip.runtimes.llamacpp.template import ChatTemplate, shipped_template
from localoip.runtimes.llamacpp.template_caps import Caps, probe
from localoip.runtimes.llamacpp.template_input import ChatInput, Folded, fold, needled

Messages = list[dict[str, Any]]
T = TypeVar("T")


DEFAULT_KEY = "tokenizer.chat_template"
TOOL_USE_KEY = "tokenizer.chat_template.tool_use"


def template_source(metadata: dict[str, str], chat_format: str | None) -> str | None:
    """The Jinja source a model renders its chats with; None for one of llama-cpp-python's
    named formats. Without a `chat_format`: the GGUF's default template, else its `tool_use`
    one, else a shipped one. ValueError for a "chat_template.NAME" the GGUF does not hold."""
    if chat_format is None:
        found = metadata.get(DEFAULT_KEY) or metadata.get(TOOL_USE_KEY)
        return found or shipped_template(metadata.get("general.architecture"))
    if not chat_format.startswith("chat_template."):
        return None
    name = chat_format.removeprefix("chat_template.")
    key = DEFAULT_KEY if name == "default" else f"{DEFAULT_KEY}.{name}"
    if key not in metadata:
        raise ValueError(f"chat_format {chat_format!r}: the GGUF has no {key}")
    return metadata[key]


def tool_use_source(metadata: dict[str, str], chat_format: str | None) -> str | None:
    """The template a chat that offers tools renders with instead of the default one (as
    llama-server picks `template_tool_use`): the GGUF's `tool_use` template when it has one
    beside another default and no `chat_format` is configured (one that is wins); else None."""
    found = metadata.get(TOOL_USE_KEY)
    if chat_format is not None or not found or (metadata.get(DEFAULT_KEY) or found) == found:
        return None
    return found


def chat_tokens(llm: Llama, text: str) -> list[int]:
    """A rendered prompt's tokens: special tokens read as such, and the BOS first when the
    GGUF asks for one and the template did not write it."""
    tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
    model = llm._model
    bos = model.token_bos()
    if model.add_bos_token() and bos != -1 and tokens[:1] != [bos]:
        tokens.insert(0, bos)
    return tokens


def _renders_prompts(llm: Llama) -> bool:
    """Whether a named format's handler only renders a prompt (else legacy.py runs it)."""
    try:
        completion_arguments(llm, True, {"messages": [{"role": "user", "content": "Hi"}]})
    except Exception:
        return False
    return True


def _token_text(llm: Llama, token: int) -> str:
    return "" if token == -1 else llm._model.token_get_text(token)


class ChatPrompt:
    """How one model's chats become prompts (see the module's docstring).

    `source` is the Jinja template's text (template_source; None for one of llama-cpp-python's
    named formats), `caps` what it takes, and `renders` whether our generation paths can run
    its chats (else legacy.py must). Raises ValueError for a template that does not compile."""

    def __init__(self, llm: Llama, source: str | None) -> None:
        self._llm = llm
        self.source = source
        self.template: ChatTemplate | None = None
        if self.source is not None:
            model = llm._model
            bos, eos = _token_text(llm, model.token_bos()), _token_text(llm, model.token_eos())
            self.template = ChatTemplate(self.source, bos, eos)
        self.renders = self.template is not None or _renders_prompts(llm)
        self.caps = probe(self._render) if self.renders else Caps()

    def _render(
        self,
        messages: Messages,
        tools: Messages | None,
        add_generation_prompt: bool,
        template_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """The prompt text; InputError (param "messages") when the template refuses."""
        if self.template is not None:
            return self.template.render(messages, tools, add_generation_prompt, template_kwargs)
        prompt = arguments(self._llm, True, _handler_kwargs(messages, tools), "messages")["prompt"]
        if isinstance(prompt, str):
            return prompt
        return self._llm.detokenize(prompt, special=True).decode(errors="replace")

    def handler_kwargs(self, chat: ChatInput) -> dict[str, Any]:
        """`messages` (and `tools`) for llama-cpp-python's own chat path (legacy.py)."""
        folded = fold(chat, self.caps)
        return _handler_kwargs(folded.messages, folded.tools)

    def text(self, chat: ChatInput, template_kwargs: dict[str, Any] | None = None) -> str:
        """The rendered prompt text of a chat, with its generation prompt (a Jinja template
        only): what `arguments` tokenizes, for mtmd to tokenize beside images instead."""
        if self.template is None:
            raise InputError("images need the model's Jinja chat template", "messages")
        folded = fold(chat, self.caps)
        text = self._blamed(
            chat,
            folded,
            template_kwargs,
            lambda: self._render(folded.messages, folded.tools, True, template_kwargs),
        )
        self._check_nothing_left_out(chat, template_kwargs)
        return text

    def arguments(
        self,
        chat: ChatInput,
        kwargs: dict[str, Any],
        final: str | None = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The `_create_completion` arguments of a chat, generating with `kwargs` (sampling,
        grammar). `final` is text the reply goes on from, after the generation prompt
        (a reply being continued). `template_kwargs` are further template variables.

        Raises InputError naming what the template refuses or would leave out."""
        llm = self._llm
        folded = fold(chat, self.caps)
        if self.template is None:
            handler = {**_handler_kwargs(folded.messages, folded.tools), **kwargs}
            args = self._blamed(
                chat, folded, template_kwargs, lambda: arguments(llm, True, handler, "messages")
            )
            if final:
                prompt = args["prompt"]
                if isinstance(prompt, str):
                    prompt += final
                else:  # the handler gave tokens: the reply so far follows as plain text's
                    prompt = [*prompt, *llm.tokenize(final.encode(), add_bos=False)]
                args = {**args, "prompt": prompt}
        else:
            text = self._blamed(
                chat,
                folded,
                template_kwargs,
                lambda: self._render(folded.messages, folded.tools, True, template_kwargs),
            )
            tokens = chat_tokens(llm, text)
            if final:  # the reply so far is plain text: none of its tokens read as special
                tokens += llm.tokenize(final.encode(), add_bos=False)
            defaults = dict(chat_defaults())
            args = completion_arguments(llm, False, {**defaults, **kwargs, "prompt": tokens})
        self._check_nothing_left_out(chat, template_kwargs)
        return args

    def _blamed(
        self,
        chat: ChatInput,
        folded: Folded,
        template_kwargs: dict[str, Any] | None,
        render: Callable[[], T],
    ) -> T:
        """`render()`; a refusal of the messages names the message that brings it on, the
        last of the shortest prefix of the folded messages that the template refuses."""
        try:
            return render()
        except InputError as exc:
            if exc.param != "messages":
                raise
            at = self._first_refused(folded, template_kwargs)
            if at is None:
                raise
            role = chat.messages[at].role
            raise InputError(f"messages[{at}] ({role}): {exc}", f"messages[{at}]") from None

    def _first_refused(self, folded: Folded, template_kwargs: dict[str, Any] | None) -> int | None:
        for k in range(1, len(folded.messages) + 1):
            try:
                self._render(folded.messages[:k], folded.tools, False, template_kwargs)
            except InputError:
                at = max(folded.sources[k - 1], default=-1)
                return at if at >= 0 else None
        return None

    def _check_nothing_left_out(
        self, chat: ChatInput, template_kwargs: dict[str, Any] | None
    ) -> None:
        """Render the chat with needles: what the prompt lacks, the template left out."""
        marked, needles = needled(chat)
        folded = fold(marked, self.caps)
        try:
            text = self._render(folded.messages, folded.tools, True, template_kwargs)
        except InputError:
            return  # the chat itself rendered: nothing to learn from needles it refuses
        missing = [where for needle, where in needles.items() if needle not in text]
        if missing:
            what = ", ".join(w for w, _ in missing)
            raise InputError(
                f"this model's chat template leaves {what} out of its prompt; nothing is "
                "dropped silently, so the request is refused",
                missing[0][1],
            )


def _handler_kwargs(messages: Messages, tools: Messages | None) -> dict[str, Any]:
    return {"messages": messages, **({"tools": tools} if tools else {})}
