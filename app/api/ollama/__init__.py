"""The Ollama API adapter: /api/* on the server's own port (and HEAD / for liveness)."""
