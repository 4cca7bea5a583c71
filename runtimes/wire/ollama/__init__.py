"""Ollama's wire format (its /api/* routes): request and answer bodies as msgspec Structs, read
into and made from the neutral types of runtimes.capabilities."""
