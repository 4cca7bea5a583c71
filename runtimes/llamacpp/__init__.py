"""The llama.cpp runtime: serial path, batching engine, tool calls, grammars, token text, build."""
