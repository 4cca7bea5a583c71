"""OpenAI API adapter: wire types, translation to runtime capabilities, routes."""
