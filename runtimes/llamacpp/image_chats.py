"""A chat with images: its prompt tokenized by mtmd (vision.py), and its generation, which
either path reads the images of (serial.py into the model's own context, batch.py into a
slot's sequence of the engine's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from llama_cpp import Llama
from localoip.runtimes.capabilities import ChatRequest, InputError, chat_images, refuse_images
from localoip.runtimes.llamacpp import chats
from localoip.runtimes.llamacpp.generation import Generation, plan
from localoip.runtimes.llamacpp.prompts import ChatPrompt
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
    decoded = pictures(chat_images(request.messages), options)
    return MediaPrompt(vision, prompt.text(planned.chat, planned.template_kwargs), decoded)


def image_generation(
    llm: Llama,
    prompt: ChatPrompt,
    request: ChatRequest,
    planned: chats.ChatPlan,
    model: chats.ChatModel,
    media: MediaPrompt,
) -> Generation:
    """The chat's generation with mtmd's tokens (an image's positions as placeholders) as its
    prompt, and `media` to read them."""
    gen = chats.chat_generation(llm, prompt, request, planned, model)
    args = {**gen.args, "prompt": media.tokens}
    again = plan(llm, args, "messages", request.logprobs, gen.special)
    return replace(again, reply=gen.reply, media=media)


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
        media = media_prompt(vision, request, prompt, planned, options)
        try:
            return image_generation(llm, prompt, request, planned, model, media)
        except BaseException:
            media.close()
            raise

    return prepare
