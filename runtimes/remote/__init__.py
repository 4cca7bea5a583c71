"""Runtimes that forward to another server: OpenAI-compatible and OIP upstreams."""
