"""The OpenAI API adapter: one module per API, at /v1, /openai/v1 and the Seldon sub-routes."""
