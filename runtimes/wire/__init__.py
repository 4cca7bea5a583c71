"""Wire formats both sides speak: OIP tensors and framing, OpenAI JSON and Structs, SSE."""
