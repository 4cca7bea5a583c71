"""The Anthropic Messages API adapter: /v1/messages, its token counts and model lists."""
