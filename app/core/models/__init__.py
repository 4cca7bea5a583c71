"""A configured model's handle and its parts: turns, streams, batching, lifecycle, supervision."""
