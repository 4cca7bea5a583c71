"""Model families' reply formats: reasoning, answer and tool calls read as a reply streams."""
