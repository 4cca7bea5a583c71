"""Anthropic's Messages API as msgspec Structs, both ways: requests read into runtimes.capabilities,
messages, stream events, errors and model lists made from its results (and read by clients)."""
