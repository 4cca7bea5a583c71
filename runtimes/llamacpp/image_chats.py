"""A chat with images: its prompt tokenized by mtmd (vision.py), and its generation, which
either path reads the images of (serial.py into the model's own context, batch.py into a
slot's sequence of the engine's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace

from llama_cpp import Llama
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    InputError,
    TextDelta,
    Truncated,
    chat_images,
    refuse_images,
)
from localoip.runtimes.llamacpp import chats, context
from localoip.runtimes.llamacpp.generation import Generation, marked, plan
from localoip.runtimes.llamacpp.prompts import ChatPrompt
from localoip.runtimes.llamacpp.serial import SerialGenerator
from localoip.runtimes.llamacpp.vision import MediaPrompt, Vision
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.wire.images import pictures


def media_prompt(
    vision: Vision | None,
    request: ChatRequest,
    prompt: ChatPrompt,
    planned: chats.ChatPlan,
    options: LlamaCppOptions,
) -> MediaPrompt:
    """A chat's prompt with its images: each checked and decoded by Pillow (`max_images`,
    `max_image_bytes`, `max_image_pixels`), the chat rendered by our template with a marker
    where each image stands, then tokenized by mtmd. The caller closes it.

    Raises InputError for a model without a projector, a continued reply, or a bad image."""
    if vision is None:
        refuse_images(request.messages, "no mmproj projector is configured for it")
        raise AssertionError("refuse_images raises for a chat with images")
    if request.continue_final:
        raise InputError("a reply with images cannot be continued", "messages")
    decoded = pictures(chat_images(planned.chat.messages), options)
    return MediaPrompt(vision, prompt.text(planned.chat, planned.template_kwargs), decoded)


def fitted_plan(
    llm: Llama,
    vision: Vision | None,
    request: ChatRequest,
    prompt: ChatPrompt,
    planned: chats.ChatPlan,
    model: chats.ChatModel,
    options: LlamaCppOptions,
) -> tuple[chats.ChatPlan, Truncated | None]:
    """The plan of a chat with images whose prompt fits the context (context.py): under a
    policy that cuts, its oldest whole turns are dropped, images and all, so no image's
    positions are ever split (a middle cut too drops whole turns here). InputError when the
    system messages and the last turn alone exceed the limit, or under `error` when the
    chat does not fit (on planning)."""
    policy = context.policy_of(model.overflow, request.truncation)
    if policy == "error":
        return planned, None
    limit = context.prompt_limit(llm.n_ctx(), request.sampling.max_tokens, policy)

    def measure(kept: list[ChatMessage]) -> int:
        with closing(
            media_prompt(vision, request, prompt, chats.with_messages(planned, kept), options)
        ) as media:
            return len(media.tokens)

    messages = planned.chat.messages
    k = context.fewest_turns(messages, measure, limit)
    if k < 0:
        least = measure(context.without_turns(messages, len(context.turns(messages))))
        raise context.cannot_fit(
            least, limit, llm.n_ctx(), "the system messages and the last turn", "messages"
        )
    if k == 0:
        return planned, None
    kept = chats.with_messages(planned, context.without_turns(messages, k))
    dropped = measure(messages) - measure(kept.chat.messages)
    return kept, Truncated("rolling_window", dropped)


def image_generation(
    llm: Llama,
    prompt: ChatPrompt,
    request: ChatRequest,
    planned: chats.ChatPlan,
    model: chats.ChatModel,
    media: MediaPrompt,
    truncated: Truncated | None = None,
) -> Generation:
    """The chat's generation with mtmd's tokens (an image's positions as placeholders) as its
    prompt, and `media` to read them; `truncated` says what fitted_plan cut."""
    gen = chats.chat_generation(llm, prompt, request, planned, model)
    args = {**gen.args, "prompt": media.tokens}
    policy = context.policy_of(model.overflow, request.truncation)
    limit = context.prompt_limit(llm.n_ctx(), args["max_tokens"], policy)
    again = plan(llm, args, "messages", request.logprobs, gen.special, limit=limit)
    return replace(again, reply=gen.reply, media=media, truncated=truncated)


@dataclass(frozen=True, slots=True)
class ImageChat:
    """What a chat with images runs with on a loaded model: its weights, its projector, the
    template the chat renders with and what the model brings to it, and the model's options."""

    llm: Llama
    vision: Vision | None
    prompt: ChatPrompt
    model: chats.ChatModel
    options: LlamaCppOptions

    def stream(
        self, serial: SerialGenerator, request: ChatRequest, planned: chats.ChatPlan
    ) -> Iterator[TextDelta]:
        """The chat's deltas on the serial path (mtmd reads into its context), its prompt
        fitted to the context first (fitted_plan); the first and last say what was cut."""
        llm, vision, prompt, model, opts = (
            self.llm,
            self.vision,
            self.prompt,
            self.model,
            self.options,
        )
        planned, cut = fitted_plan(llm, vision, request, prompt, planned, model, opts)
        with closing(media_prompt(vision, request, prompt, planned, opts)) as media:
            gen = image_generation(llm, prompt, request, planned, model, media, cut)
            yield from marked(serial.run(gen), gen.truncated)


def engine_plan(
    vision: Vision | None,
    llm: Llama,
    prompt: ChatPrompt,
    request: ChatRequest,
    planned: chats.ChatPlan,
    model: chats.ChatModel,
    options: LlamaCppOptions,
) -> Callable[[], Generation] | None:
    """How the batching engine plans a chat: its generation, with a media prompt for its
    images, which the engine closes when the sequence ends. None for images the engine cannot
    read: without a projector (the serial path refuses them), or with Gemma 3's, whose images
    attend both ways and must each fit one micro-batch, larger than the engine's steps."""
    if not chat_images(request.messages):
        return lambda: chats.chat_generation(llm, prompt, request, planned, model)
    if vision is None or vision.non_causal:
        return None

    def prepare() -> Generation:
        fitted, cut = fitted_plan(llm, vision, request, prompt, planned, model, options)
        media = media_prompt(vision, request, prompt, fitted, options)
        try:
            return image_generation(llm, prompt, request, fitted, model, media, cut)
        except BaseException:
            media.close()
            raise

    return prepare
