"""A chat template in Jinja, rendered as Hugging Face transformers' `apply_chat_template` and
llama.cpp render one: jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks,
loop controls, `{% generation %}` passed through, a `tojson` that keeps non-ASCII text and key
order, and the globals `raise_exception` and `strftime_now`. A template's source is compiled
once, whatever number of models carry it.

The variables a template gets: `messages` (OpenAI-shaped dicts), `tools` (OpenAI function
tools, or None), `add_generation_prompt`, `bos_token` and `eos_token` (the texts of the model's
tokens), and any template kwargs (the standard ones are `enable_thinking`, `reasoning_effort`
and `documents`; a request's `chat_template_kwargs` go here too).

GGUFs without a template get a shipped one (templates/*.jinja beside this module): the
official Gemma 3 template for the gemma3 architecture, ChatML for any other, as llama-server
falls back to ChatML.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from localoip.runtimes.capabilities import InputError

# GGUF architectures whose files carry no chat template, and the template their models use.
SHIPPED = {"gemma3": "gemma3.jinja"}
DEFAULT_TEMPLATE = "chatml.jinja"

# Variables the renderer sets itself: template kwargs cannot replace them.
RESERVED = frozenset({"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"})


class TemplateRaised(jinja2.TemplateError):
    """The template called `raise_exception(message)`: it refuses its input."""


class _Generation(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}` marks assistant text for
    training masks; for a prompt it only renders its body."""

    tags = {"generation"}  # noqa: RUF012  (jinja2's Extension API)

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' `tojson` filter: JSON as json.dumps writes it, non-ASCII text kept and
    keys in their order (jinja2's own escapes HTML characters and sorts keys)."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise TemplateRaised(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_Generation, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@lru_cache(maxsize=64)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def shipped_template(architecture: str | None) -> str:
    """The shipped template for a GGUF of this architecture that carries none."""
    name = SHIPPED.get(architecture or "", DEFAULT_TEMPLATE)
    return (files(__package__) / "templates" / name).read_text(encoding="utf-8")


class ChatTemplate:
    """A compiled chat template with the model's BOS and EOS texts.

    Raises ValueError when the source does not compile."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        try:
            self._template = _compile(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"the chat template does not compile: {exc}") from None
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        template_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """The prompt text of `messages` (and `tools`, OpenAI's function-tool shape).

        `template_kwargs` are further variables (`enable_thinking`, `reasoning_effort`,
        `documents`, a request's `chat_template_kwargs`); they cannot set the ones above.
        Raises InputError (param "messages"): the template's own message when it calls
        `raise_exception`, else what failed while rendering."""
        extra = template_kwargs or {}
        taken = sorted(RESERVED & extra.keys())
        if taken:
            raise InputError(
                f"chat_template_kwargs cannot set {', '.join(taken)}", "chat_template_kwargs"
            )
        variables = {
            **extra,
            "messages": messages,
            "tools": tools or None,  # None, not undefined: templates test `tools is not none`
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        try:
            return self._template.render(variables)
        except TemplateRaised as exc:
            message = f"this model's chat template refuses these messages: {exc}"
            raise InputError(message, "messages") from None
        except (jinja2.TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
            failed = f"{type(exc).__name__}: {exc}"
            message = f"this model's chat template cannot render these messages: {failed}"
            raise InputError(message, "messages") from None
